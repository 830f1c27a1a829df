"""How the documentation build runs the examples of the gallery.

Every example is a script with command-line options that writes its figures to
``--out``. sphinx-gallery runs each one with the options below (through its
``reset_argv`` hook) and a fresh output folder inside the build, and
:func:`written_figures` shows on the example's page the figures the script
wrote there, in the order it wrote them; the first one is the thumbnail.

The options keep the whole gallery to about two minutes on 2 CPU cores; the
examples stay meaningful at these sizes (``tests/test_examples*.py`` checks
the same settings or smaller ones).
"""

import shutil
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent
OUT = DOCS / "_build" / "gallery-out"

# Options by example file; an example not listed runs with its defaults.
EXAMPLE_ARGS = {
    # Defaults: 16 networks, 150 digits and 18 candidates take 100 s here; 8
    # networks, 120 digits and 8 candidates still classify 3 stages at 0.7 or
    # better (tests/test_examples_torch.py).
    "plot_classify_training_stage.py": [
        "--n-networks", "8",
        "--n-points", "120",
        "--n-landscapes", "3", "5",
        "--C", "1", "10",
    ],
    # The default 400 epochs train on long after the last threshold (95%,
    # reached at epoch 215 with the default seed).
    "plot_complexity_curve.py": ["--max-epochs", "250"],
}  # fmt: skip


def _out_dir(src_file):
    return OUT / Path(src_file).stem


def reset_argv(gallery_conf, script_vars):
    """The command-line options of an example, with an empty ``--out`` folder."""
    out = _out_dir(script_vars["src_file"])
    # Figures left by an earlier build must not appear as this run's.
    shutil.rmtree(out, ignore_errors=True)
    return [
        *EXAMPLE_ARGS.get(Path(script_vars["src_file"]).name, []),
        "--out",
        str(out),
    ]


def written_figures(block, block_vars, gallery_conf):
    """Image scraper: the PNG files the example has written since the last block."""
    import matplotlib.pyplot as plt
    from sphinx_gallery.scrapers import figure_rst

    # The examples save their figures to files; figures they left open would
    # only pile up across examples.
    plt.close("all")
    out = _out_dir(block_vars["src_file"])
    if not out.is_dir():
        return ""
    shown = block_vars.setdefault("sklandscapes_shown", set())
    written = sorted(
        (path for path in out.glob("*.png") if path not in shown),
        key=lambda path: path.stat().st_mtime_ns,
    )
    image_paths = []
    for png, image_path in zip(written, block_vars["image_path_iterator"]):
        shutil.copyfile(png, image_path)
        image_paths.append(image_path)
        shown.add(png)
    return figure_rst(image_paths, gallery_conf["src_dir"])
