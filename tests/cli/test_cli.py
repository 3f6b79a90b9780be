from pathlib import Path

import pytest

from quag.cli import COMMANDS, main
from tests.helpers import HIREST


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for name in COMMANDS:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0, name


def test_data_stats_prints_the_official_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data-stats", "--data", str(HIREST)]) == 0
    out = capsys.readouterr().out
    assert "train    1507    865         4,128        547  4,145" in out
    assert "val       477    193            78         78    606" in out


def test_errors_are_reported_not_raised(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["data-stats", "--data", str(tmp_path)]) == 1
    assert "all_data_train.json not found" in capsys.readouterr().err
