"""What a lab is: frozen, typed values, and the primitives that read YAML and check fields with their line."""
