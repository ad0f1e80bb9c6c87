"""How sealed reports leave the customer's network: SMTP to their relay, HTTPS to the dealer's server,
or a drop folder."""

from .base import BaseTransport, EnvelopeTransport, Transport
from .filedrop import FileDropTransport
from .smtp import SmtpTransport

__all__ = ["BaseTransport", "EnvelopeTransport", "FileDropTransport", "SmtpTransport", "Transport"]
