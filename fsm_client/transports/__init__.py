"""How sealed report mails leave the customer's network: SMTP to their relay, or a drop folder."""

from .base import BaseTransport, Transport
from .filedrop import FileDropTransport
from .smtp import SmtpTransport

__all__ = ["BaseTransport", "FileDropTransport", "SmtpTransport", "Transport"]
