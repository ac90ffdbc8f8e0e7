"""Server settings and the helpers behind the control scripts (start.sh ...)."""
