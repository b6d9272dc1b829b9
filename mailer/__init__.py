"""GT Mailer: newsletters and event invitations for GT (Gemeentelijke Telecommunicatie)."""

__version__ = "0.1.0"
