//! tgcdn-edge: the stateless HTTP server near viewers.
