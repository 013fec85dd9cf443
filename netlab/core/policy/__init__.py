"""NetworkPolicy semantics: which pods a policy selects, what it allows, and its nftables ruleset."""
