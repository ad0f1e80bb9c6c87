"""What the web portal shows, as data: every read goes through ``fsm_server.scoping.Scoped``.

The pages (``fsm_server.web``) render these Structs; each function runs a bounded number of
queries whatever the size of the fleet (``tests/server/test_portal_queries.py`` counts them).
"""
