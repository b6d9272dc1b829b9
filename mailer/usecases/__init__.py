"""The application layer: the operations the CLI and the staff console call, one module per
area. Plain functions taking their dependencies (sessions, settings, sender, actor) as arguments.
"""
