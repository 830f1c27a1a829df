"""The sklandscapes command as a shell user meets it."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sklandscapes.cli import main


def test_help_reads_well(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "sklandscapes demo" in text and "run" in text
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--preset",
        "--networks",
        "--thresholds",
        "--resume",
        "--backend",
        "--scheduler",
        "--n-jobs",
        "--device",
        "--out",
        "--seed",
    ):
        assert option in text


def test_user_errors_are_one_line_without_traceback(tmp_path, capsys):
    code = main(
        ["run", "synthetic", "--thresholds", "0.9", "0.5", "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("sklandscapes: error: thresholds must be increasing")
    assert len(err.strip().splitlines()) == 1
    assert (
        main(["run", "synthetic", "--scheduler", "tcp://x:1", "--out", str(tmp_path)])
        == 2
    )
    assert "--scheduler needs --backend dask" in capsys.readouterr().err


def test_unknown_experiment_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "cifar"])
    assert info.value.code == 2
    assert "invalid choice: 'cifar'" in capsys.readouterr().err


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "sklandscapes"
    result = subprocess.run(
        [str(script), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip()


@pytest.fixture
def tiny_settings(monkeypatch):
    pytest.importorskip("torch")
    from sklandscapes import experiments

    original = experiments.make_config

    def tiny(experiment, preset="fast", **overrides):
        overrides = {k: v for k, v in overrides.items() if v is not None}
        values = dict(
            spacing=0.05,
            sublattice_step=2,
            resolution=51,
            widths=(2, 16, 16, 2),
            max_epochs=40,
            lr=1e-2,
            batch_size=64,
            n_networks=2,
            thresholds=(0.6, 0.7),
            n_permutations=50,
        )
        values.update(overrides)
        return original(experiment, preset, **values)

    monkeypatch.setattr(experiments, "make_config", tiny)
    return experiments


def test_tiny_run_from_the_command_line(tmp_path, capsys, tiny_settings):
    code = main(
        [
            "run",
            "synthetic",
            "--networks",
            "2",
            "--thresholds",
            "0.6",
            "0.7",
            "--permutations",
            "50",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert f"Report: {tmp_path / 'report.md'}" in out
    assert (tmp_path / "report.md").exists()
    # The same command again is refused: the folder holds this run already.
    again = ["run", "synthetic", "--networks", "2", "--out", str(tmp_path)]
    assert main([*again, "--thresholds", "0.6", "0.7", "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_demo_twice_recomputes_nothing(tmp_path, capsys, tiny_settings, monkeypatch):
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    first = (tmp_path / "results.npz").read_bytes()
    landscapes = (tmp_path / "landscapes.npy").read_bytes()

    def fail(*args, **kwargs):
        raise AssertionError("recomputed")

    from sklandscapes.experiments import _folder, _vectors

    monkeypatch.setattr(_folder, "save_diagrams", fail)
    monkeypatch.setattr(_vectors, "_new_partial", fail)
    monkeypatch.setattr("sklandscapes.nets.train_networks", fail)
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    assert "Report:" in capsys.readouterr().out
    assert (tmp_path / "landscapes.npy").read_bytes() == landscapes
    stored = np.load(tmp_path / "results.npz")
    with np.load(io.BytesIO(first)) as before:
        np.testing.assert_array_equal(stored["pvalues"], before["pvalues"])
        np.testing.assert_array_equal(stored["norms"], before["norms"])


def test_warnings_are_one_line(tmp_path, capsys, tiny_settings):
    # 0.99 is out of reach in 40 epochs: the run goes on and says so.
    args = ["run", "synthetic", "--thresholds", "0.6", "0.99", "--out", str(tmp_path)]
    assert main([*args, "--quiet"]) == 2  # fewer than two thresholds reached
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert lines and all(line.startswith("sklandscapes: warning: ") for line in lines)
    assert "result = train_networks(" not in err


def test_interrupt_exits_130_with_a_hint(tmp_path, capsys, tiny_settings, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    from sklandscapes.experiments import _folder

    monkeypatch.setattr(_folder, "save_diagrams", interrupt)
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" in err


def _unwritable(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root, where chmod does not deny writing")
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    return ["--out", str(folder / "run")]


def _under_a_file(tmp_path):
    (tmp_path / "afile.txt").write_text("not a folder")
    return ["--out", str(tmp_path / "afile.txt" / "sub")]


def _a_file(tmp_path):
    (tmp_path / "afile.txt").write_text("not a folder")
    return ["--out", str(tmp_path / "afile.txt")]


def _cuda_without_cuda(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    return ["--device", "cuda"]


REFUSED = {
    "widths-for-other-data": (
        lambda tmp_path: ["--widths", "3", "15", "2"],
        r"widths=\(3, 15, 2\) starts with 3, but the synthetic data have 2 features",
    ),
    "max-epochs-0": (
        lambda tmp_path: ["--max-epochs", "0"],
        "max_epochs must be an int >= 1, got 0",
    ),
    "device-tpu": (lambda tmp_path: ["--device", "tpu"], "unknown device 'tpu'"),
    "device-cuda-without-cuda": (_cuda_without_cuda, "device 'cuda' needs CUDA"),
    "permutations-0": (
        lambda tmp_path: ["--permutations", "0"],
        "n_permutations must be an int >= 1, got 0",
    ),
    "n-jobs-0": (lambda tmp_path: ["--n-jobs", "0"], "n_jobs must be a nonzero int"),
    "out-in-proc": (
        lambda tmp_path: ["--out", "/proc/x"],
        "--out '/proc/x' cannot be written",
    ),
    "out-under-a-file": (
        _under_a_file,
        r"afile.txt/sub' cannot be created: '[^']*afile.txt' is a file",
    ),
    "out-is-a-file": (_a_file, r"--out '[^']*afile.txt' is a file; choose another"),
    "resume-without-a-run": (
        lambda tmp_path: ["--resume", "--out", str(tmp_path / "typo_folder")],
        r"--resume: nothing to resume in '[^']*typo_folder' \(no such folder\)",
    ),
    "resume-in-an-empty-folder": (
        lambda tmp_path: ["--resume", "--out", str(tmp_path)],
        r"nothing to resume in '[^']*' \(no config.json there\)",
    ),
    "out-unwritable": (_unwritable, "cannot be written"),
    "resume-and-force": (
        lambda tmp_path: ["--resume", "--force"],
        "--resume and --force exclude each other",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_options_are_refused_before_any_work(case, tmp_path, capsys, monkeypatch):
    options, message = REFUSED[case]
    extra = options(tmp_path)
    if "--out" not in extra:
        extra += ["--out", str(tmp_path / "run")]

    def no_work(*args, **kwargs):
        raise AssertionError("work started")

    pytest.importorskip("torch")
    monkeypatch.setattr("sklandscapes.experiments._data.load_data", no_work)
    monkeypatch.setattr("sklandscapes.nets.train_networks", no_work)
    code = main(["run", "synthetic", "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("sklandscapes: error: ")
    assert re.search(message, err), err
    assert not list(tmp_path.rglob("config.json"))
    assert not os.path.exists("/proc/x")


def test_a_folder_in_use_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    from sklandscapes.experiments import _folder

    def no_work(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr("sklandscapes.experiments._data.load_data", no_work)
    out = tmp_path / "run"
    # Another lock on the file is another run, also in this process: flock
    # locks belong to open files (tests/test_experiments.py uses a process).
    with _folder.locked(out):
        code = main(["run", "synthetic", "--quiet", "--force", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        f"sklandscapes: error: {str(out)!r} is in use by another run (process "
        f"{os.getpid()}); wait for it to end, or choose another --out"
    ]
    assert [p.name for p in out.iterdir()] == ["run.lock"]


def test_demo_refuses_resume_with_force(tmp_path, capsys):
    assert main(["demo", "--resume", "--force", "--out", str(tmp_path / "d")]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_resume_reports_a_damaged_file_in_one_line(
    tmp_path, capsys, tiny_settings, monkeypatch
):
    # The figures and report are not what this test is about, and are slow.
    monkeypatch.setattr(
        "sklandscapes.experiments._report.write_report", lambda *args: None
    )
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    diagram = sorted((tmp_path / "diagrams").glob("*.npz"))[0]
    diagram.write_bytes(diagram.read_bytes()[:100])
    capsys.readouterr()
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"sklandscapes: warning: {str(diagram)!r} is damaged (BadZipFile: File is "
        "not a zip file); deleted; computing it again"
    ]
    (tmp_path / "config.json").write_text('{"experiment": "synth')
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.json' is damaged (JSONDecodeError" in err[0]


def test_command_line_runs_use_every_core_by_default(monkeypatch, tmp_path):
    """The library keeps scikit-learn's n_jobs=None; the command uses the cores."""
    from sklandscapes import experiments

    seen = {}

    def record(config, out, **options):
        seen.update(options)
        raise experiments.ExperimentError("stop here")

    monkeypatch.setattr(experiments, "run_experiment", record)
    assert main(["run", "synthetic", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert seen["n_jobs"] == -1
    assert main(["demo", "--out", str(tmp_path / "d"), "--n-jobs", "1"]) == 2
    assert seen["n_jobs"] == 1


def test_monitor_every_is_validated_like_the_other_options(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--monitor-every N" in capsys.readouterr().out
    code = main(["run", "synthetic", "--monitor-every", "0", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        "sklandscapes: error: monitor_every must be an int >= 1, got 0"
    )
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_run_help_states_the_presets_defaults(capsys):
    # The help is generated from the presets: each experiment's fast and
    # paper values of max_epochs, n_networks and n_permutations appear under
    # their option, as make_config gives them.
    from sklandscapes.experiments import EXPERIMENTS, PRESETS, make_config

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split()).replace(",", "")
    for option, field in (
        ("--max-epochs", "max_epochs"),
        ("--networks", "n_networks"),
        ("--permutations", "n_permutations"),
    ):
        described = text.split(f"{option} N ", 1)[1].split(" --", 1)[0]
        stated = {
            experiment: " / ".join(
                f"{getattr(make_config(experiment, preset), field)} {preset}"
                for preset in PRESETS
            )
            for experiment in EXPERIMENTS
        }
        if len(set(stated.values())) == 1:  # the same for every experiment
            for preset in PRESETS:
                value = getattr(make_config(EXPERIMENTS[0], preset), field)
                assert f"{value} {preset}" in described, (option, described)
        for experiment, values in stated.items():
            if len(set(stated.values())) > 1:
                assert f"{experiment} {values}" in described, (option, described)
