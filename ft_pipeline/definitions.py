"""Everything under ft_pipeline/defs/, loaded in one place. workspace.yaml points here.

This is what `dg.load_from_defs_folder` does, minus its last step: that one also imports every
installed Dagster plugin's components (all of dagster-aws among them) to describe them to the
`dg` CLI, which costs more than a second on every load and tells the UI nothing about our graph.
"""
import warnings
from pathlib import Path

import dagster as dg
from dagster.components.core.component_tree import ComponentTree

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    _tree = ComponentTree.for_project(path_within_project=Path(__file__).parent)
    defs = _tree.build_defs(_tree.defs_module_path)
