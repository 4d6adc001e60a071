//! Where a post is, as each network takes it. VK takes coordinates (`wall.post` `lat`/`long`);
//! Facebook (`place` of `/{page-id}/feed`), Instagram (a container's `location_id`, which is
//! the id of a Facebook place Page) and X (`geo.place_id` of `POST /2/tweets`) take only the
//! id of a place in their own catalogue. People give that id as they find it: the bare id, or
//! the address of the place's page copied from the browser. The id is read out of the
//! addresses whose shape each network documents; anything else is refused, because guessing
//! an id out of an unknown address would tie the post to some other place.

use reqwest::Url;
use thiserror::Error;

use super::{Coordinates, Location, Network};

/// Why a post's location cannot go to a network.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BadPlace {
    /// Only coordinates were given to a network that takes only a place of its catalogue.
    #[error("{0:?} takes a location as the id of a place, not coordinates")]
    NeedsPlace(Network),
    /// Only a place id was given to a network that takes only coordinates.
    #[error("{0:?} takes a location as coordinates, not the id of a place")]
    NeedsCoordinates(Network),
    /// What was pasted is neither an id of a place of this network nor the address of its page.
    #[error("not the id of a place on {0:?} nor the address of its page")]
    NotAPlace(Network),
    /// The network takes no location at all.
    #[error("{0:?} takes no location")]
    NotTaken(Network),
}

/// What a place's address looks like on `network`, to show people.
pub fn example(network: Network) -> &'static str {
    match network {
        Network::Facebook | Network::Instagram => {
            "https://www.facebook.com/pages/Name/110843418940484"
        }
        Network::X => "https://x.com/places/5a110d312052166f",
        _ => "",
    }
}

/// The location of a post on `network`: what the network takes of the coordinates and of the
/// place pasted (its id read out of an address), or why it cannot take them.
pub fn resolve(
    network: Network,
    coordinates: Option<Coordinates>,
    place: Option<&str>,
) -> Result<Option<Location>, BadPlace> {
    if coordinates.is_none() && place.is_none() {
        return Ok(None);
    }
    match network {
        // A place pasted for other networks does not stop VK from taking the coordinates.
        Network::Vk => match coordinates {
            Some(coordinates) => Ok(Some(Location {
                coordinates: Some(coordinates),
                place_id: None,
            })),
            None => Err(BadPlace::NeedsCoordinates(network)),
        },
        Network::Facebook | Network::Instagram | Network::X => {
            let place = place.ok_or(BadPlace::NeedsPlace(network))?;
            Ok(Some(Location {
                coordinates: None,
                place_id: Some(place_id(network, place)?),
            }))
        }
        Network::Ok | Network::Youtube | Network::GooglePlus => Err(BadPlace::NotTaken(network)),
    }
}

/// The id of a place on `network` out of its bare id or the address of its page.
pub fn place_id(network: Network, pasted: &str) -> Result<String, BadPlace> {
    let pasted = pasted.trim();
    let id = match network {
        Network::Facebook | Network::Instagram => facebook_place(pasted),
        Network::X => x_place(pasted),
        _ => None,
    };
    id.ok_or(BadPlace::NotAPlace(network))
}

/// A Facebook place Page's numeric id: bare, or out of `facebook.com/<id>`,
/// `facebook.com/pages/<name>/<id>` (also with a category before the name) and
/// `facebook.com/profile.php?id=<id>`. A Page's user name (`facebook.com/cafe.name`) names it
/// without its id, which only Graph's Pages Search can look up, so it is refused.
fn facebook_place(pasted: &str) -> Option<String> {
    if is_number(pasted) {
        return Some(pasted.to_string());
    }
    let url = address(pasted)?;
    let host = url.host_str()?.to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    if !matches!(
        host,
        "facebook.com" | "m.facebook.com" | "web.facebook.com" | "business.facebook.com" | "fb.com"
    ) {
        return None;
    }
    let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    let id = match segments.as_slice() {
        ["profile.php"] => url
            .query_pairs()
            .find(|(key, _)| key == "id")
            .map(|(_, id)| id.into_owned())?,
        [id] => (*id).to_string(),
        ["pages", .., id] if segments.len() >= 3 => (*id).to_string(),
        _ => return None,
    };
    is_number(&id).then_some(id)
}

/// An X place's id (16 hexadecimal digits): bare, or out of `x.com/places/<id>` (also on
/// `twitter.com`).
fn x_place(pasted: &str) -> Option<String> {
    let id = if is_x_place(pasted) {
        pasted.to_string()
    } else {
        let url = address(pasted)?;
        let host = url.host_str()?.to_ascii_lowercase();
        let host = host.strip_prefix("www.").unwrap_or(&host);
        if !matches!(
            host,
            "x.com" | "twitter.com" | "mobile.x.com" | "mobile.twitter.com"
        ) {
            return None;
        }
        let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            ["places", id] if is_x_place(id) => (*id).to_string(),
            _ => return None,
        }
    };
    Some(id.to_ascii_lowercase())
}

fn is_x_place(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_number(id: &str) -> bool {
    (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
}

/// A pasted address, `https://` assumed when it was copied without its scheme.
fn address(pasted: &str) -> Option<Url> {
    let url = if pasted.contains("://") {
        Url::parse(pasted).ok()?
    } else {
        Url::parse(&format!("https://{pasted}")).ok()?
    };
    matches!(url.scheme(), "https" | "http").then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOSCOW: Coordinates = Coordinates {
        latitude: 55.75,
        longitude: 37.62,
    };

    #[test]
    fn facebook_places_are_read_out_of_their_addresses() {
        let fb = |s| place_id(Network::Facebook, s);
        for pasted in [
            "110843418940484",
            " 110843418940484 ",
            "https://www.facebook.com/110843418940484",
            "https://www.facebook.com/110843418940484/",
            "facebook.com/pages/Cafe-Pushkin/110843418940484",
            "https://m.facebook.com/pages/Restaurant/Cafe-Pushkin/110843418940484?ref=br",
            "https://www.facebook.com/profile.php?id=110843418940484",
            "http://fb.com/110843418940484",
        ] {
            assert_eq!(fb(pasted).as_deref(), Ok("110843418940484"), "{pasted}");
        }
        for pasted in [
            "",
            "cafe.pushkin",
            "https://www.facebook.com/cafe.pushkin",
            "https://www.facebook.com/pages/Cafe-Pushkin",
            "https://www.facebook.com/profile.php?id=cafe",
            "https://evil.example/110843418940484",
            "https://www.instagram.com/explore/locations/213131048/berlin-germany/",
            "javascript:alert(1)",
            "123456789012345678901",
        ] {
            assert_eq!(
                fb(pasted),
                Err(BadPlace::NotAPlace(Network::Facebook)),
                "{pasted}"
            );
        }
        // Instagram's locations are Facebook place Pages.
        assert_eq!(
            place_id(
                Network::Instagram,
                "https://www.facebook.com/pages/Berlin/111175118906315"
            )
            .as_deref(),
            Ok("111175118906315")
        );
    }

    #[test]
    fn x_places_are_read_out_of_their_addresses() {
        let x = |s| place_id(Network::X, s);
        for pasted in [
            "5a110d312052166f",
            "5A110D312052166F",
            "https://x.com/places/5a110d312052166f",
            "https://twitter.com/places/5a110d312052166f/",
            "x.com/places/5a110d312052166f",
        ] {
            assert_eq!(x(pasted).as_deref(), Ok("5a110d312052166f"), "{pasted}");
        }
        for pasted in [
            "5a110d31205216",
            "110843418940484",
            "https://x.com/5a110d312052166f",
            "https://x.com/places/zz110d312052166f",
            "https://example.org/places/5a110d312052166f",
            "https://www.facebook.com/110843418940484",
        ] {
            assert_eq!(x(pasted), Err(BadPlace::NotAPlace(Network::X)), "{pasted}");
        }
    }

    #[test]
    fn each_network_takes_what_it_can() {
        let fb_place = Some("https://www.facebook.com/110843418940484");
        assert_eq!(resolve(Network::Facebook, None, None), Ok(None));
        // VK takes the coordinates and leaves another network's place.
        assert_eq!(
            resolve(Network::Vk, Some(MOSCOW), fb_place),
            Ok(Some(Location {
                coordinates: Some(MOSCOW),
                place_id: None
            }))
        );
        assert_eq!(
            resolve(Network::Vk, None, fb_place),
            Err(BadPlace::NeedsCoordinates(Network::Vk))
        );
        assert_eq!(
            resolve(Network::Facebook, Some(MOSCOW), fb_place),
            Ok(Some(Location {
                coordinates: None,
                place_id: Some("110843418940484".into())
            }))
        );
        for network in [Network::Facebook, Network::Instagram, Network::X] {
            assert_eq!(
                resolve(network, Some(MOSCOW), None),
                Err(BadPlace::NeedsPlace(network))
            );
        }
        assert_eq!(
            resolve(Network::X, None, fb_place),
            Err(BadPlace::NotAPlace(Network::X))
        );
        assert_eq!(
            resolve(Network::Youtube, Some(MOSCOW), None),
            Err(BadPlace::NotTaken(Network::Youtube))
        );
        assert!(
            BadPlace::NeedsPlace(Network::Facebook)
                .to_string()
                .contains("not coordinates")
        );
    }
}
