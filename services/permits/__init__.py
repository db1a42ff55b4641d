"""Enterprise e-permit services (design/permits.md). Plain functions over a Session."""
