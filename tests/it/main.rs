//! Integration tests: one binary, a module per area.

mod crdt_props;
mod golden;

mod agents;
mod attach;
mod attribution;
mod backend_cli;
mod cli;
mod cli_ux;
mod cli_ux2;
mod concurrency;
mod confluence;
mod confluence_fake;
mod crash;
mod github;
mod github_fake;
mod hostile;
mod jira;
mod jira_fake;
mod library;
mod memory;
mod mirror;
mod model;
mod project;
mod scale;
mod sim;
mod store;
mod support;
mod swarm;
mod sync;
mod tracker_model;
mod tracker_props;
