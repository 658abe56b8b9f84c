//! Every background process a service needs is started by that service's own start-up where
//! the process serves it, and stopped with the server: `serve --target all` runs them all,
//! `--target gateway` none of them, a service's target only its own.

use ichigen_gateway::serve::{Services, Target};
use ichigen_tests::server::TestServer;

fn running(s: &Services) -> [bool; 4] {
    [
        s.inventory.processes_running(),
        s.fulfillment.processes_running(),
        s.orders.processes_running(),
        s.returns.processes_running(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_target_runs_the_processes_of_its_services_and_stops_them() {
    for (target, expected) in [
        (Target::All, [true, true, true, true]),
        (Target::Gateway, [false, false, false, false]),
        (Target::Inventory, [true, false, false, false]),
        (Target::Fulfillment, [false, true, false, false]),
        (Target::Order, [false, false, true, false]),
        (Target::Rma, [false, false, false, true]),
    ] {
        let server = TestServer::start_in(tempfile::tempdir().unwrap(), target).await;
        let services = server.running.services().clone();
        assert_eq!(running(&services), expected, "{target:?}");
        server.stop().await;
        assert_eq!(
            running(&services),
            [false; 4],
            "{target:?}: stopped with the server"
        );
    }
}
