"""Model backends behind one interface (DESIGN.md "Providers")."""
