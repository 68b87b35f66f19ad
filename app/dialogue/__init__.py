"""Conversations: the turn pipeline, intents, slots, handoff, sessions, feedback, knowledge gaps, stateless
completions.
"""
