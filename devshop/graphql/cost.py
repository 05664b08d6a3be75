"""Calculated query cost, by Shopify's rules (shopify.dev, "GraphQL Admin API rate limits"):

- scalars and enums cost 0, an object 1, a mutation field a flat 10;
- a connection costs 2 plus, for each object it may return (``first`` or ``last``), the cost
  of that object and what is selected under it; ``pageInfo`` is free;
- a list field sized by ``first`` costs that many times its object;
- the requested cost is taken before running the query, and the difference with the actual
  cost (the same rules over what was actually returned) is refunded after.
A single query may not request more than 1,000 points.
"""

from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
)
from graphql.execution.values import VariableValues, get_argument_values

SINGLE_QUERY_MAX_COST = 1000
MUTATION_COST = 10
CONNECTION_COST = 2


class QueryCost:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: VariableValues,
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        root = (
            schema.mutation_type if operation.operation.value == "mutation" else schema.query_type
        )
        assert root is not None
        self.root: GraphQLObjectType = root

    # -- walking selections, fragments flattened --------------------------------------------

    def _fields(
        self, selection_set: SelectionSetNode | None, parent: Any
    ) -> Iterator[tuple[FieldNode, GraphQLField]]:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name.startswith("__"):
                    continue
                yield selection, parent.fields[name]
            elif isinstance(selection, InlineFragmentNode):
                target = (
                    self.schema.get_type(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                yield from self._fields(selection.selection_set, target)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments[selection.name.value]
                target = self.schema.get_type(fragment.type_condition.name.value)
                yield from self._fields(fragment.selection_set, target)

    def _size(self, field: GraphQLField, node: FieldNode) -> int:
        args = get_argument_values(field, node, self.variables)
        return int(args.get("first") or args.get("last") or 0)

    @staticmethod
    def _is_connection(field: GraphQLField) -> bool:
        return get_named_type(field.type).name.endswith("Connection")

    # -- requested cost -----------------------------------------------------------------------

    def requested(self) -> int:
        total = 0
        for node, field in self._fields(self.operation.selection_set, self.root):
            # A mutation costs a flat 10, whatever its payload selects (Shopify's
            # requestedQueryCost for a mutation is 10).
            if self.root is self.schema.mutation_type:
                total += MUTATION_COST
            else:
                total += self._field_requested(node, field)
        return total

    def _selection_requested(self, selection_set: SelectionSetNode | None, parent: Any) -> int:
        return sum(self._field_requested(n, f) for n, f in self._fields(selection_set, parent))

    def _field_requested(self, node: FieldNode, field: GraphQLField) -> int:
        named = get_named_type(field.type)
        if is_leaf_type(named):
            return 0
        if self._is_connection(field):
            return CONNECTION_COST + self._size(field, node) * self._connection_item_requested(
                node, named
            )
        children = self._selection_requested(node.selection_set, named)
        if is_list_type(get_nullable_type(field.type)) and "first" in field.args:
            return max(1, self._size(field, node)) * (1 + children)
        return 1 + children

    def _connection_item_requested(self, node: FieldNode, connection: Any) -> int:
        best = 0
        for child, child_field in self._fields(node.selection_set, connection):
            if child.name.value == "edges":
                edge_type = get_named_type(child_field.type)
                for grandchild, gc_field in self._fields(child.selection_set, edge_type):
                    if grandchild.name.value == "node":
                        item = get_named_type(gc_field.type)
                        best = max(
                            best, 1 + self._selection_requested(grandchild.selection_set, item)
                        )
            elif child.name.value == "nodes":
                item = get_named_type(child_field.type)
                best = max(best, 1 + self._selection_requested(child.selection_set, item))
        return best

    # -- actual cost, over what came back -----------------------------------------------------

    def actual(self, data: dict[str, Any] | None) -> int:
        total = 0
        for node, field in self._fields(self.operation.selection_set, self.root):
            value = (data or {}).get(node.alias.value if node.alias else node.name.value)
            if self.root is self.schema.mutation_type:
                total += MUTATION_COST
            else:
                total += self._field_actual(node, field, value)
        return total

    def _selection_actual(
        self, selection_set: SelectionSetNode | None, parent: Any, data: Any
    ) -> int:
        total = 0
        for node, field in self._fields(selection_set, parent):
            key = node.alias.value if node.alias else node.name.value
            value = data.get(key) if isinstance(data, dict) else None
            total += self._field_actual(node, field, value)
        return total

    def _field_actual(self, node: FieldNode, field: GraphQLField, value: Any) -> int:
        named = get_named_type(field.type)
        if is_leaf_type(named):
            return 0
        if self._is_connection(field):
            return CONNECTION_COST + self._connection_items_actual(node, named, value)
        if isinstance(value, list):
            return sum(1 + self._selection_actual(node.selection_set, named, v) for v in value)
        return 1 + self._selection_actual(node.selection_set, named, value)

    def _connection_items_actual(self, node: FieldNode, connection: Any, value: Any) -> int:
        if not isinstance(value, dict):
            return 0
        best = 0
        for child, child_field in self._fields(node.selection_set, connection):
            key = child.alias.value if child.alias else child.name.value
            if child.name.value == "edges":
                edge_type = get_named_type(child_field.type)
                spent = 0
                for edge in value.get(key) or []:
                    for grandchild, gc_field in self._fields(child.selection_set, edge_type):
                        if grandchild.name.value == "node":
                            gc_key = grandchild.alias.value if grandchild.alias else "node"
                            spent += 1 + self._selection_actual(
                                grandchild.selection_set,
                                get_named_type(gc_field.type),
                                edge.get(gc_key),
                            )
                best = max(best, spent)
            elif child.name.value == "nodes":
                item = get_named_type(child_field.type)
                spent = sum(
                    1 + self._selection_actual(child.selection_set, item, v)
                    for v in value.get(key) or []
                )
                best = max(best, spent)
        return best
