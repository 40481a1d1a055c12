//! `[[netns]]` tables: the raw form, and the checks that run before any lab is built
//! (namespaces and interfaces exist, addresses parse, families agree, IPv6 only in a lab that
//! keeps it).

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use serde::Deserialize;
use toml::Spanned;

use super::{Source, Topo};
use crate::frame::parse_mac;
use crate::kernel::netstate::{Cidr, sysctl_path};
use crate::scenario::ScenarioError;
use crate::scenario::kernel_state::{AddressSpec, NeighSpec, NetnsSpec, RouteSpec};
use crate::scenario::schema::{IfaceRef, LabSpec};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a [[netns]] table")]
pub(super) struct RawNetns {
    name: Spanned<String>,
    sysctl: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
    #[serde(default)]
    address: Vec<Spanned<RawAddress>>,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    neigh: Vec<Spanned<RawNeigh>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a [[netns.address]] table")]
struct RawAddress {
    dev: Spanned<IfaceRef>,
    ip: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a [[netns.route]] table")]
struct RawRoute {
    to: Spanned<String>,
    via: Option<Spanned<String>>,
    dev: Option<Spanned<IfaceRef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a [[netns.neigh]] table")]
struct RawNeigh {
    ip: Spanned<String>,
    mac: Spanned<String>,
    dev: Spanned<IfaceRef>,
}

/// The topology's namespaces, in order of first appearance.
fn namespaces(topo: &Topo<'_>) -> Vec<String> {
    if topo.links.is_empty() {
        return vec![LabSpec::SENDER.to_owned(), LabSpec::RECEIVER.to_owned()];
    }
    let mut out: Vec<String> = Vec::new();
    for link in topo.links {
        for end in [&link.a, &link.b] {
            if !out.contains(&end.netns) {
                out.push(end.netns.clone());
            }
        }
    }
    out
}

/// Checks every `[[netns]]` table against the topology and the lab.
pub(super) fn netns(
    src: &Source<'_>,
    topo: &Topo<'_>,
    lab: &LabSpec,
    raw: Vec<Spanned<RawNetns>>,
) -> Result<Vec<NetnsSpec>, ScenarioError> {
    let known = namespaces(topo);
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for spanned in raw {
        let line = src.line(&spanned.span());
        let raw = spanned.into_inner();
        let name = raw.name.get_ref().clone();
        if !known.contains(&name) {
            return Err(src.at_value(
                &raw.name.span(),
                format!(
                    "[[netns]] {name:?} is not a namespace of the lab (it has {})",
                    known
                        .iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(src.at_value(
                &raw.name.span(),
                format!("[[netns]] {name:?} is given twice: say everything in one table"),
            ));
        }
        let ctx = Ctx {
            src,
            topo,
            lab,
            netns: &name,
        };
        let mut spec = NetnsSpec {
            name: name.clone(),
            line,
            sysctls: Vec::new(),
            addresses: Vec::new(),
            routes: Vec::new(),
            neighbours: Vec::new(),
        };
        for (key, value) in raw.sysctl.unwrap_or_default() {
            let path = sysctl_path(key.get_ref()).map_err(|e| src.at_value(&key.span(), e))?;
            let text = match value.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                other => {
                    return Err(src.at_value(
                        &value.span(),
                        format!(
                            "sysctl {:?}: give the value as a string or an integer, not a {}",
                            key.get_ref(),
                            other.type_str()
                        ),
                    ));
                }
            };
            spec.sysctls.push((path, text));
        }
        for a in raw.address {
            let a = a.into_inner();
            let ip = ctx.cidr(&a.ip, "[[netns.address]] ip")?;
            let dev = ctx.dev(&a.dev, "[[netns.address]] dev")?;
            spec.addresses.push(AddressSpec { dev, ip });
        }
        for r in raw.route {
            let route_line = src.line(&r.span());
            let r = r.into_inner();
            let to = ctx.cidr(&r.to, "[[netns.route]] to")?;
            if !to.is_network() {
                return Err(src.at_value(
                    &r.to.span(),
                    format!(
                        "[[netns.route]] to {:?} has host bits set: write the network, {}",
                        r.to.get_ref(),
                        to.network()
                    ),
                ));
            }
            let via = r
                .via
                .as_ref()
                .map(|via| {
                    let ip = ctx.ip(via, "[[netns.route]] via")?;
                    if ip.is_ipv4() != to.addr.is_ipv4() {
                        return Err(src.at_value(
                            &via.span(),
                            format!(
                                "[[netns.route]] via {ip} and to {to} are of different address \
                                 families"
                            ),
                        ));
                    }
                    Ok(ip)
                })
                .transpose()?;
            let dev = r
                .dev
                .as_ref()
                .map(|d| ctx.dev(d, "[[netns.route]] dev"))
                .transpose()?;
            if via.is_none() && dev.is_none() {
                return Err(src.invalid(
                    route_line,
                    format!(
                        "[[netns.route]] to {to} says neither via (a gateway) nor dev (an \
                         interface of {name:?}): give one or both"
                    ),
                ));
            }
            spec.routes.push(RouteSpec { to, via, dev });
        }
        for n in raw.neigh {
            let n = n.into_inner();
            let ip = ctx.ip(&n.ip, "[[netns.neigh]] ip")?;
            let mac = parse_mac(n.mac.get_ref())
                .map_err(|e| src.at_value(&n.mac.span(), format!("[[netns.neigh]] mac: {e}")))?;
            let dev = ctx.dev(&n.dev, "[[netns.neigh]] dev")?;
            spec.neighbours.push(NeighSpec { ip, mac, dev });
        }
        if spec.sysctls.is_empty()
            && spec.addresses.is_empty()
            && spec.routes.is_empty()
            && spec.neighbours.is_empty()
        {
            return Err(src.invalid(
                line,
                format!(
                    "[[netns]] {name:?} sets nothing: give sysctl, [[netns.address]], \
                     [[netns.route]] or [[netns.neigh]]"
                ),
            ));
        }
        out.push(spec);
    }
    Ok(out)
}

/// What the checks of one `[[netns]]` table need.
struct Ctx<'a> {
    src: &'a Source<'a>,
    topo: &'a Topo<'a>,
    lab: &'a LabSpec,
    netns: &'a str,
}

impl Ctx<'_> {
    /// An interface of this namespace.
    fn dev(&self, dev: &Spanned<IfaceRef>, what: &str) -> Result<IfaceRef, ScenarioError> {
        self.topo.find(self.src, dev, what)?;
        if dev.get_ref().netns != self.netns {
            return Err(self.src.at_value(
                &dev.span(),
                format!(
                    "{what} \"{}\" is not in namespace {:?}: this [[netns]] table sets up {:?} \
                     only",
                    dev.get_ref(),
                    self.netns,
                    self.netns
                ),
            ));
        }
        Ok(dev.get_ref().clone())
    }

    /// An IPv6 address is refused unless the lab keeps IPv6.
    fn family(
        &self,
        span: &std::ops::Range<usize>,
        ip: IpAddr,
        what: &str,
    ) -> Result<(), ScenarioError> {
        if ip.is_ipv6() && !self.lab.ipv6 {
            return Err(self.src.at_value(
                span,
                format!(
                    "{what} {:?} is IPv6, and the lab turns IPv6 off in every namespace: set \
                     [lab] ipv6 = true",
                    &self.src.text[span.clone()].trim_matches('"')
                ),
            ));
        }
        Ok(())
    }

    fn ip(&self, text: &Spanned<String>, what: &str) -> Result<IpAddr, ScenarioError> {
        let ip: IpAddr = text.get_ref().parse().map_err(|_| {
            self.src.at_value(
                &text.span(),
                format!("{what} {:?} is not an IPv4 or IPv6 address", text.get_ref()),
            )
        })?;
        self.family(&text.span(), ip, what)?;
        Ok(ip)
    }

    fn cidr(&self, text: &Spanned<String>, what: &str) -> Result<Cidr, ScenarioError> {
        let cidr: Cidr = text
            .get_ref()
            .parse()
            .map_err(|e| self.src.at_value(&text.span(), format!("{what}: {e}")))?;
        self.family(&text.span(), cidr.addr, what)?;
        Ok(cidr)
    }
}
