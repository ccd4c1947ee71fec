"""YAML that a hostile file cannot blow up: a size limit, and a limit on the values it expands to.

Aliases let a 433-byte file name a billion values ("billion laughs"): PyYAML builds the shared
nodes once, but anything that walks the result (validation, json.dumps for a digest) visits every
copy; it took 10 s and 386 MiB before failing elsewhere. Here the composed node graph is measured,
each alias counted at its full size, before any Python value is built.
"""
from __future__ import annotations

MAX_BYTES = 1 << 20  # a task file or preset is a page or two
MAX_VALUES = 100_000


class YamlLimitError(ValueError):
    """Past a limit: the message says which, and the line where known."""

    def __init__(self, why: str, line: int | None = None):
        self.why, self.line = why, line
        super().__init__(why)


def load(text: str):
    """(data, root node) of one YAML document; yaml.YAMLError for a syntax error, YamlLimitError
    past a limit."""
    import yaml

    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlLimitError(f"is over {MAX_BYTES // 1024} KiB")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_size(node)
        return loader.construct_document(node), node
    finally:
        loader.dispose()


def _check_size(root) -> None:
    import yaml

    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise YamlLimitError("an alias refers to a value that contains it", node.start_mark.line + 1)
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        open_nodes.discard(key)
        if total > MAX_VALUES:
            raise YamlLimitError(f"expands to over {MAX_VALUES:,} values (aliases repeating aliases?)",
                                 node.start_mark.line + 1)
        sizes[key] = total
        return total

    size(root)
