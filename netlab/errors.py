"""Errors netlab reports to users; the CLI maps each kind to an exit code."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input: where, what, and what would be right."""

    file: str
    line: int | None
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class NetlabError(Exception):
    """A failure that is not the user's input: exit 1, with what to do next."""

    exit_code = 1


class InputError(NetlabError):
    """The lab file or the arguments are wrong: exit 2, every problem listed."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("<arguments>", None, "", problems)]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class KernelFeatureMissing(NetlabError):
    """The running kernel cannot build what the lab asks for."""


class PrivilegeError(NetlabError):
    """The command needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)."""
