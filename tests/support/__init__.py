"""Helpers the tests import (never from conftest): lab text, lab names, the kernel seen by iproute2."""
