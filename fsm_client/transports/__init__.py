"""How sealed reports leave the customer's network: SMTP to their relay (the sender both programs
share, from fsm_common), HTTPS to the dealer's server, or a drop folder."""

from fsm_common.smtp import SmtpTransport
from fsm_common.transport import BaseTransport, EnvelopeTransport, Transport

from .filedrop import FileDropTransport

__all__ = ["BaseTransport", "EnvelopeTransport", "FileDropTransport", "SmtpTransport", "Transport"]
