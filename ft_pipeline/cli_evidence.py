"""ft-pipeline evidence: a model version's evidence bundle (core/release/evidence.py), written or
verified. A user's mistake exits 2 with one line; a bundle that fails verification exits 1 naming
the file and, for the run log, the edited line."""
from __future__ import annotations

import json
from pathlib import Path

from ft_pipeline.core import paths
from ft_pipeline.errors import UserError


def add_parsers(sub) -> None:
    p = sub.add_parser("evidence", help="write a model version's evidence bundle (folder + zip), or --verify one")
    p.add_argument("--name", help="registry name (default: the registry's only model)")
    p.add_argument("--version", default=None, help="default: the current version")
    p.add_argument("--out", default=None, help="folder for the bundle (default: $FT_PIPELINE_HOME/evidence)")
    p.add_argument("--verify", metavar="DIR", default=None, help="verify a bundle folder instead of writing one")
    p.set_defaults(func=cmd_evidence)


def cmd_evidence(args) -> int:
    from ft_pipeline.core.release import evidence

    if args.verify:
        folder = Path(args.verify)
        if not (folder / "manifest.json").is_file():
            raise UserError(f"{folder}: not an evidence bundle folder (no manifest.json)")
        try:
            manifest = evidence.verify(folder)
        except evidence.EvidenceError as exc:
            print(f"ft-pipeline evidence: FAILED: {exc}")
            return 1
        print(json.dumps({"verified": str(folder), "name": manifest["name"], "version": manifest["version"],
                          "run_log_lines": manifest["run_log"]["lines"]}))
        return 0
    folder, archive = write_bundle(args.name, args.version, args.out)
    print(json.dumps({"folder": str(folder), "zip": str(archive)}))
    return 0


def write_bundle(name: str | None, version: str | None, out: str | None) -> tuple[Path, Path]:
    from ft_pipeline.core.data.suppression import erasure_log
    from ft_pipeline.core.release import evidence, registry

    root = paths.pipeline_home() / "registry"
    if name is None:
        names = registry.model_names(root)
        if len(names) != 1:
            raise UserError(f"--name: give the model's registry name (the registry holds {', '.join(names) or 'none'})")
        name = names[0]
    try:
        version_dir = registry.resolve(root, name, version)
    except registry.RegistryError as exc:
        raise UserError(str(exc)) from None
    target = Path(out) if out else paths.pipeline_home() / "evidence"
    if target.exists() and not target.is_dir():
        raise UserError(f"--out {target}: not a folder")
    try:
        files = evidence.build(version_dir, erasure_log())
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{version_dir}: cannot read its lineage ({exc.__class__.__name__}: {exc})") from None
    try:
        return evidence.write(files, target, f"{name}-{version_dir.name}")
    except OSError as exc:
        raise UserError(f"--out {target}: cannot write the bundle there ({exc.strerror or exc})") from None
