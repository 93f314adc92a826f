"""Catalogue files (product groups, incentive studies): short hand-written YAML read strictly.

Pure: no Dagster, since a registered incentive model loads the study catalogue's
`Treatment` in an interpreter without it. `catalog_sync.py` turns a catalogue's keys
into dynamic partitions.
"""

from __future__ import annotations

import yaml

# Anything deeper, or using YAML aliases (the "billion laughs" expansion), is refused
# before it can exhaust memory or the stack.
MAX_DEPTH = 20


class CatalogueYAMLError(ValueError):
    """A YAML construct a catalogue must not use; `parse_yaml` names the file."""


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML silently keeps the last of two equal keys; a catalogue must not. Aliases
    and deep nesting are refused (see MAX_DEPTH)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise CatalogueYAMLError(f"YAML aliases (*name) are not allowed (line {mark.line + 1})")
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise CatalogueYAMLError(f"nesting deeper than {MAX_DEPTH} levels (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise CatalogueYAMLError(
                f"duplicate key {key!r} at line {key_node.start_mark.line + 1} "
                f"(first defined at line {seen[key] + 1})"
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, source: str, error: type[Exception]):
    """The document in `text`; every problem raises `error` naming `source`."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)
    except ValueError as exc:  # the loader's refusals, and values PyYAML cannot construct (a bad date)
        raise error(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise error(f"{source}: YAML syntax error: {exc}") from None
