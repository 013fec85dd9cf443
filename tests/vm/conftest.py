"""tests/vm holds the VM runner, not tests: pytest collects nothing here (its unit tests are
tests/unit/test_vm_runner.py)."""
collect_ignore_glob = ["*"]
