"""Errors netlab reports to users, each carrying its exit code (click shows them; no wrapper)."""
from __future__ import annotations

from dataclasses import dataclass

import click


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


class NetlabError(click.ClickException):
    """A failure that is not the user's input: exit 1, with what to do next.

    A click exception (as Flask's NoAppException), so click prints it and exits with its
    code wherever a command raises it."""

    exit_code = 1

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=True)


class InputError(NetlabError, click.UsageError):
    """The lab file or the arguments are wrong: exit 2, every problem listed."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("<arguments>", None, "", problems)]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def show(self, file=None) -> None:
        for problem in self.problems:
            click.echo(f"error: {problem}", file=file, err=True)
        if len(self.problems) > 1:
            click.echo(f"{len(self.problems)} problems; nothing was built", file=file, err=True)


class KernelFeatureMissing(NetlabError):
    """The running kernel cannot build what the lab asks for."""


class PrivilegeError(NetlabError):
    """The command needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)."""
