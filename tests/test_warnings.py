"""The library's warnings are Python's: a `SweepWarning` a library user filters as any
other; the `sweep` command shows each as one plain line, every time."""

from __future__ import annotations

import warnings

import pytest

from orchestrator.errors import SweepWarning
from orchestrator.tracking.mirror import Mirror


class Broken:
    key, where = "tracking.test", "http://127.0.0.1:9"

    def open(self, sweep) -> None:
        raise ConnectionError("Connection refused")

    def close(self) -> None:
        pass


LINE = ("warning: tracking.test: http://127.0.0.1:9 failed (Connection refused); the sweep "
        "goes on without it; `sweep track x` sends what it missed")


def _drop_a_tracker() -> None:
    Mirror([Broken()], "sweep track x").open(None)


def test_a_library_user_gets_a_sweep_warning_and_can_filter_it(capsys):
    with pytest.warns(SweepWarning) as caught:
        _drop_a_tracker()
    assert [str(w.message) for w in caught] == [LINE]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SweepWarning)
        _drop_a_tracker()
    assert capsys.readouterr().err == ""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=SweepWarning)
        with pytest.raises(SweepWarning, match="the sweep goes on without it"):
            _drop_a_tracker()


def test_the_cli_shows_each_sweep_warning_as_one_line_and_others_as_python_does(capsys):
    from orchestrator.cli.common import show_warnings_as_lines

    with warnings.catch_warnings(record=True) as python_shows:
        show_warnings_as_lines()
        show_warnings_as_lines()  # once per `sweep` invocation: installed once
        _drop_a_tracker()
        _drop_a_tracker()  # every time, not once per place
        warnings.simplefilter("always", UserWarning)
        warnings.warn("another library's", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == f"{LINE}\n{LINE}\n"
    assert [(w.category, str(w.message)) for w in python_shows] == [
        (UserWarning, "another library's")]
