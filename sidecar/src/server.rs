//! Starting and stopping: load every route's credentials and bind every
//! listener before the runtime starts (so every start-up error is reported
//! at once, with exit 2), then serve until SIGTERM/SIGINT and drain.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::admin::{self, AdminState};
use crate::creds::{self, Creds, FileSet};
use crate::error::Error;
use crate::metrics::{Metrics, RouteMetrics};
use crate::online;
use crate::route::{self, Route};
use crate::settings::{RouteSettings, Settings};

/// A route ready to serve: credentials loaded, socket bound.
#[derive(Debug)]
struct Ready {
    settings: Arc<RouteSettings>,
    files: FileSet,
    creds: Creds,
    listener: std::net::TcpListener,
}

/// Everything bound and loaded, before the runtime starts.
#[derive(Debug)]
pub struct Prepared {
    routes: Vec<Ready>,
    admin: Option<std::net::TcpListener>,
}

/// Loads and validates every route's credentials (what `check` does). A
/// CRL file that `crl_from` has not fetched yet is not required.
pub fn check(settings: &Settings) -> Result<(), Error> {
    for route in &settings.routes {
        let fetched_later =
            route.crl_from.is_some() && route.files.crl.as_deref().is_some_and(|p| !p.exists());
        if fetched_later {
            let mut r = route.clone();
            r.files.crl = None;
            creds::load(&r)?;
        } else {
            creds::load(route)?;
        }
    }
    Ok(())
}

fn bind(addr: std::net::SocketAddr) -> Result<std::net::TcpListener, Error> {
    let l = std::net::TcpListener::bind(addr).map_err(|source| Error::Bind { addr, source })?;
    l.set_nonblocking(true)
        .map_err(|source| Error::Bind { addr, source })?;
    Ok(l)
}

/// Loads credentials and binds listeners (blocking; before the runtime).
pub fn prepare(settings: &Settings) -> Result<Prepared, Error> {
    let mut routes = Vec::new();
    for route in &settings.routes {
        // `--crl-from`: fetch the CRLs first; the credentials load them.
        online::initial_crl_fetch(route)?;
        let (files, creds) = creds::load(route)?;
        routes.push((route.clone(), files, creds));
    }
    let mut ready = Vec::new();
    for (route, files, creds) in routes {
        let listener = bind(route.listen)?;
        ready.push(Ready {
            settings: Arc::new(route),
            files,
            creds,
            listener,
        });
    }
    let admin = settings.admin.map(bind).transpose()?;
    Ok(Prepared {
        routes: ready,
        admin,
    })
}

fn runtime_error(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |source| Error::Runtime { what, source }
}

/// Serves until SIGTERM or SIGINT, then drains. Builds its own runtime.
pub fn run(prepared: Prepared) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(runtime_error("cannot start the runtime"))?;
    rt.block_on(serve(prepared))
}

async fn serve(prepared: Prepared) -> Result<(), Error> {
    let mut term = signal(SignalKind::terminate()).map_err(runtime_error("SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(runtime_error("SIGINT handler"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(runtime_error("SIGHUP handler"))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (hup_tx, hup_rx) = watch::channel(0u64);

    let mut all_metrics = Vec::new();
    let mut online_routes = Vec::new();
    let mut servers = tokio::task::JoinSet::new();
    for ready in prepared.routes {
        let s = ready.settings;
        let metrics = Arc::new(RouteMetrics::new(&s.name, s.direction));
        metrics.set_online(s.renew_from.is_some(), s.crl_from.is_some());
        online_routes.push((s.clone(), metrics.clone()));
        metrics.set_creds(&ready.creds);
        ready.creds.warn_if_stale(&s.name);
        all_metrics.push(metrics.clone());
        let listener =
            tokio::net::TcpListener::from_std(ready.listener).map_err(|source| Error::Bind {
                addr: s.listen,
                source,
            })?;
        if s.allow.is_empty() {
            tracing::warn!(route = %s.name, ca = %s.files.ca.display(),
                "no --allow given: every peer whose certificate chains to the CA is accepted");
        }
        tracing::info!(route = %s.name, direction = %s.direction.as_str(),
            listen = %listener.local_addr().map_or(s.listen, |a| a),
            upstream = %s.upstream, serial = %ready.creds.serial,
            allow = %s.allow.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            "route listening");
        let (creds_tx, creds_rx) = watch::channel(Arc::new(ready.creds));
        tokio::spawn(creds::watch_files(
            s.clone(),
            ready.files,
            creds_tx,
            hup_rx.clone(),
            metrics.clone(),
        ));
        let route = Route {
            settings: s,
            creds: creds_rx,
            metrics,
        };
        servers.spawn(route::serve(route, listener, stop_rx.clone()));
    }
    let (renew_jobs, crl_jobs) = online::jobs(&online_routes);
    for job in renew_jobs {
        tracing::info!(identity = %job.dir.display(), ca = %job.url,
            "renewing the identity from the online CA at 2/3 of its lifetime");
        tokio::spawn(online::renew_loop(job, stop_rx.clone()));
    }
    for job in crl_jobs {
        tracing::info!(crl = %job.path.display(), ca = %job.url,
            "fetching the CRLs from the online CA before their nextUpdate");
        tokio::spawn(online::crl_loop(job, stop_rx.clone(), hup_rx.clone()));
    }
    let state = Arc::new(AdminState {
        metrics: Metrics::new(all_metrics),
        serving: AtomicBool::new(true),
    });
    if let Some(l) = prepared.admin {
        let addr = l.local_addr().ok();
        let listener = tokio::net::TcpListener::from_std(l).map_err(|source| Error::Bind {
            addr: addr.unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0))),
            source,
        })?;
        if let Some(a) = addr {
            tracing::info!(admin = %a, "admin endpoint listening");
        }
        tokio::spawn(admin::serve(listener, state.clone()));
    }

    let mut reloads = 0u64;
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = hup.recv() => {
                reloads += 1;
                tracing::info!("SIGHUP: reloading credentials");
                let _ = hup_tx.send(reloads);
            }
        }
    }
    state.serving.store(false, Relaxed);
    let _ = stop_tx.send(true);
    while servers.join_next().await.is_some() {}
    tracing::info!("stopped");
    Ok(())
}
