"""Push notifications: message kinds (``kinds``), transports behind one interface
(``transports``) and the ``push.send`` outbox handler (``handler``).

Domains never call a transport: they call ``services.notify.notify`` which writes a
``notifications`` row plus an outbox row in their transaction.
"""
