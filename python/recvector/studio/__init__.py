"""`recvector studio`: a local web page that maps an existing database visually and previews the
recommendations, served by this package on 127.0.0.1 (see :mod:`recvector.studio.server`)."""
