"""Everything that touches the outside world: AWS (boto3), files, plots, the CLI's I/O."""
