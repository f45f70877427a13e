"""``drctl protect``: keep a backup set within its RPO of a source, continuously."""
