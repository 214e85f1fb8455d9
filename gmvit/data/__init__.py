"""Data for GMViT: the procedural synthetic set, rendered-view stores, PNG view sets and
the torch datasets over them."""
