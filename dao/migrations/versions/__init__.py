"""Schema revisions, applied in order by dao.migrate (a package so wheels ship them)."""
