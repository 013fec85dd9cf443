"""Lab file -> LabFile: every document and every cross-document rule checked, problems collected."""
