"""What staff work with beside conversations: agent assist (suggested replies, save as FAQ) and insights."""
