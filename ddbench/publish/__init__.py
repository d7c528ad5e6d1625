"""Publishing: the markdown leaderboard and the static site."""
