"""The plan and its rules: the plan's model, reading it, validating it, field by field edits, the
wizard's draft and the plan in words."""
