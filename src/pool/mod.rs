//! `Pool`: forked worker processes running plain `fn` tasks (std only).
