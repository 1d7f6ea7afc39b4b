"""Data: data set builders and readers (``datasets``, ``prepare``), transforms, loaders."""
