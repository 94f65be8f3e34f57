"""`recvector studio`: a local web page that maps an existing database visually (tables and foreign
keys from the catalog, roles, features, interaction join paths proposed from the foreign keys),
validates live with set_schema's own validator, applies, bootstraps and previews recommendations.
The page (React + React Flow, built with Vite from studio/) ships in ``static/``; the server and
its JSON API are :mod:`recvector.studio.server`.
"""
