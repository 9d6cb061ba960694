//! What `eval` and `sanity` score: the catalog's methods by their text form, and the
//! random map every method should beat. Results files written before the catalog named
//! methods differently (`ig-idgi`, `blur-ig`, `ig-uniform-recal`, ...); those names still
//! parse, and rows read from such files are renamed to the catalog's form, so a run
//! resumes an old file and tables join old and new rows.

use std::fmt;
use std::str::FromStr;

use pathscope::attribution::catalog::{Family, MethodId};
use pathscope::attribution::method::PathKind;
use pathscope::attribution::path::Integration;
use pathscope::attribution::recalibration::Recalibration;

/// A map `eval` scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalMethod {
    /// A method of the catalog.
    Method(MethodId),
    /// A uniform random map (seeded per image): the floor every method should beat.
    Random,
}

impl EvalMethod {
    /// The name in results files and tables: the catalog's canonical text, or `random`.
    pub fn name(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for EvalMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalMethod::Method(id) => id.fmt(f),
            EvalMethod::Random => f.write_str("random"),
        }
    }
}

impl FromStr for EvalMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        if s == "random" {
            return Ok(EvalMethod::Random);
        }
        if let Some(id) = legacy_method(&s) {
            return Ok(EvalMethod::Method(id));
        }
        s.parse().map(EvalMethod::Method)
    }
}

/// The method an `eval` name of earlier releases stood for. Their bare multi-reference
/// and AGI names meant the vanilla estimator (`ig-uniform`), `-recal` the valid-ip one; in
/// the catalog's grammar a bare `ig-uniform` is valid-ip, so the bare names are mapped
/// only where they come from a file ([`canonical_name`]), not from the command line.
fn legacy_method(name: &str) -> Option<MethodId> {
    let path = |p, i| Some(MethodId::path_integral(p, i));
    let recal = |family, r| Some(MethodId::new(family).with_recalibration(r));
    match name {
        "ig-idgi" => path(PathKind::Straight, Integration::Idgi),
        "blur-ig" => path(PathKind::Blur, Integration::Riemann),
        "blur-ig-idgi" => path(PathKind::Blur, Integration::Idgi),
        "guided-ig" => path(PathKind::Guided, Integration::Riemann),
        "guided-ig-idgi" => path(PathKind::Guided, Integration::Idgi),
        "ig-uniform-recal" => recal(Family::IgUniform, Recalibration::ValidIp),
        "ig-sg-recal" => recal(Family::IgSg, Recalibration::ValidIp),
        "ig-sq-recal" => recal(Family::IgSq, Recalibration::ValidIp),
        "agi-recal" => recal(Family::Agi, Recalibration::ValidIp),
        _ => None,
    }
}

/// A method name as a results file holds it, in the catalog's canonical form: names of
/// earlier releases are translated (their bare `ig-uniform`, `ig-sg`, `ig-sq` and `agi`
/// were the vanilla estimators), anything unknown is kept as it is.
pub fn canonical_name(stored: &str) -> String {
    let vanilla = |family| MethodId::new(family).with_recalibration(Recalibration::Vanilla);
    let old_vanilla = match stored {
        "ig-uniform" => Some(vanilla(Family::IgUniform)),
        "ig-sg" => Some(vanilla(Family::IgSg)),
        "ig-sq" => Some(vanilla(Family::IgSq)),
        "agi" => Some(vanilla(Family::Agi)),
        _ => None,
    };
    match old_vanilla {
        Some(id) => id.to_string(),
        None => stored
            .parse::<EvalMethod>()
            .map_or_else(|_| stored.to_string(), |m| m.name()),
    }
}

/// Splits `A:B` (a pair of method names, which themselves may hold `:`) at the one place
/// where both sides are methods.
pub fn split_pair(pair: &str) -> Result<(EvalMethod, EvalMethod), String> {
    let splits: Vec<(EvalMethod, EvalMethod)> = pair
        .match_indices(':')
        .filter_map(|(i, _)| Some((pair[..i].parse().ok()?, pair[i + 1..].parse().ok()?)))
        .collect();
    match splits[..] {
        [one] => Ok(one),
        [] => Err(format!(
            "--pair takes two method names as A:B, e.g. ig:ig:straight:idgi; got `{pair}`"
        )),
        _ => Err(format!("--pair `{pair}` can be read as more than one pair of methods")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> String {
        s.parse::<EvalMethod>().unwrap_or_else(|e| panic!("{s}: {e}")).name()
    }

    #[test]
    fn catalog_names_and_the_names_of_earlier_releases_parse() {
        assert_eq!(name("ig"), "ig:straight");
        assert_eq!(name("ig:idgi"), "ig:straight:idgi");
        assert_eq!(name("ig-idgi"), "ig:straight:idgi");
        assert_eq!(name("Guided-IG-IDGI"), "ig:guided:idgi");
        assert_eq!(name("ig-sg-recal"), "ig-sg:valid-ip");
        assert_eq!(name("random"), "random");
        assert!("sobel".parse::<EvalMethod>().is_err());
    }

    #[test]
    fn stored_names_become_canonical() {
        assert_eq!(canonical_name("ig-uniform"), "ig-uniform:vanilla");
        assert_eq!(canonical_name("agi"), "agi:vanilla");
        assert_eq!(canonical_name("agi-recal"), "agi:valid-ip");
        assert_eq!(canonical_name("blur-ig"), "ig:blur");
        assert_eq!(canonical_name("ig:straight"), "ig:straight");
        assert_eq!(canonical_name("gradient"), "gradient");
        assert_eq!(canonical_name("something else"), "something else");
    }

    #[test]
    fn pairs_split_where_both_sides_are_methods() {
        let pair = |s: &str| split_pair(s).map(|(a, b)| (a.name(), b.name()));
        assert_eq!(
            pair("ig:ig-idgi").unwrap(),
            ("ig:straight".into(), "ig:straight:idgi".into())
        );
        assert_eq!(
            pair("ig:straight:ig:straight:idgi").unwrap(),
            ("ig:straight".into(), "ig:straight:idgi".into())
        );
        assert_eq!(pair("gradient:random").unwrap(), ("gradient".into(), "random".into()));
        assert!(pair("ig").is_err());
        assert!(pair("ig:sobel").is_err());
    }
}
