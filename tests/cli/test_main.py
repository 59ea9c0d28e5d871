import pytest

from pcseg.cli.main import main


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("train", "eval"):
        assert cmd in out


@pytest.mark.parametrize("cmd", ["train", "eval"])
def test_subcommand_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "usage: pcseg " + cmd in capsys.readouterr().out


def test_train_list_and_bad_experiment(capsys):
    assert main(["train", "--list"]) == 0
    assert "supervised_synthetic" in capsys.readouterr().out
    assert main(["train", "no_such_experiment"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_eval_missing_target_is_one_line_error(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert "neither a run folder nor a checkpoint" in err and len(err.splitlines()) == 1
