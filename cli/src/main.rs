//! `crm-edge`: import, export and operate crm-edge from a terminal (issue 12; work in progress on
//! this branch: the column mapping of imports so far).

mod mapping;

fn main() {
    eprintln!("crm-edge: work in progress (column mapping only)");
    std::process::exit(2);
}
