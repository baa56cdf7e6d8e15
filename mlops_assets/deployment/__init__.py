"""Stage `deployment`: promotion to champion, export to BentoML, the bento."""
