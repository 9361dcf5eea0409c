"""A model at work: drift on every scored file (``drift``), charts of it (``charts``)."""
