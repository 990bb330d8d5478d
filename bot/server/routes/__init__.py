"""The API's routes by area: chat (``/api/chat``, ``/api/chat/stream``), feedback, and the service's own."""
