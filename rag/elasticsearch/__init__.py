"""The Elasticsearch knowledge store, one concept per module: `config` (what to connect to), `connection`
(the client, the server check and the errors a user can act on), `requests` (every request body Kefu sends,
as pure functions), `bulk` (checked bulk writes with retries), `indices` (the concrete indices behind Kefu's
alias), `reindex` (the steps that move the alias to a fresh index) and `store` (the `KnowledgeStore` itself).
"""
