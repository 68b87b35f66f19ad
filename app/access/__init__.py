"""Who may do what: principals and roles, the one gate every privileged action passes, audit, rate limits, staff
accounts, API keys.
"""
