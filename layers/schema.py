"""The roster's columns and vocabularies: the format a user provides and the demo generator writes.

Missions and people are plain pandas DataFrames whose columns are exactly
:data:`MISSION_COLUMNS` and :data:`PERSON_COLUMNS` (in that order); derived columns
(``h3_cell``) are added by :mod:`layers.locations` and never read from a user's file.
Vocabulary values are lower-case snake-case codes; the labels are for display only.
"""

from __future__ import annotations

MISSION_COLUMNS: tuple[str, ...] = (
    "mission_id",         # unique, e.g. "M-00017"
    "name",               # "Embassy of Chile"
    "country_code",       # ISO 3166-1 alpha-3 of the sending state ("CHL"; "XXX" for IOs)
    "country_name",       # "Chile"
    "mission_type",       # one of MISSION_TYPES
    "address",            # street address
    "city",
    "jurisdiction",       # USPS code of the state or territory (one of JURISDICTIONS)
    "postal_code",        # 5-digit ZIP, may be empty
    "lat",                # WGS 84 decimal degrees; empty => geocoded from postal_code/city
    "lon",
    "geocode_precision",  # one of GEOCODE_PRECISIONS; empty when lat/lon are given => "provided"
    "duty_phone",
    "email",
    "language",           # preferred language, ISO 639-1 ("es")
    "ofm_office",         # one of OFM_OFFICES; empty => derived from jurisdiction
)

PERSON_COLUMNS: tuple[str, ...] = (
    "person_id",          # unique, e.g. "P-000123"
    "mission_id",         # must exist in the missions file
    "household_id",       # people sharing a residence share it, e.g. "H-000045"
    "role",               # one of ROLES
    "immunity",           # one of IMMUNITY_LEVELS
    "name",
    "address",            # residence street address
    "city",
    "jurisdiction",       # USPS code of the residence (one of JURISDICTIONS)
    "postal_code",
    "lat",
    "lon",
    "geocode_precision",
    "phone",
    "email",
    "language",
)

MISSION_TYPES: dict[str, str] = {
    "embassy": "Embassy",
    "consulate_general": "Consulate General",
    "consulate": "Consulate",
    "honorary_consulate": "Honorary Consulate",
    "un_permanent_mission": "Permanent Mission to the UN",
    "io_office": "International-organisation office",
    "other_office": "Other official office",
}

ROLES: dict[str, str] = {
    "diplomatic_agent": "Diplomatic agent",
    "consular_officer": "Consular officer",
    "admin_technical_staff": "Administrative and technical staff",
    "service_staff": "Service staff",
    "io_staff": "International-organisation staff",
    "dependent": "Dependent",
}

IMMUNITY_LEVELS: dict[str, str] = {
    "full": "Full immunity",
    "official_acts": "Official acts only",
    "none": "No immunity",
}

GEOCODE_PRECISIONS: dict[str, str] = {
    "provided": "Coordinates provided by the roster",
    "rooftop": "Address point (online geocoder)",
    "zip": "ZIP code centroid (offline gazetteer)",
    "city": "City centroid (offline gazetteer)",
}

OFM_OFFICES: dict[str, str] = {
    "WAS": "Washington DC",
    "CHI": "Chicago",
    "HOU": "Houston",
    "LAX": "Los Angeles",
    "MIA": "Miami",
    "NYC": "New York",
    "SFO": "San Francisco",
}

# The 55 jurisdictions Mission Watch covers: the 48 contiguous states, DC, Alaska, Hawaii,
# Guam, American Samoa, the Marshall Islands and Puerto Rico.
CONTIGUOUS_STATES: tuple[str, ...] = (
    "AL", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "ID", "IL", "IN", "IA", "KS", "KY",
    "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY",
)
JURISDICTIONS: tuple[str, ...] = (*CONTIGUOUS_STATES, "DC", "AK", "HI", "GU", "AS", "MH", "PR")

# Jurisdiction -> responsible OFM office. California is split at 35.79 N (the northern
# boundary of San Luis Obispo, Kern and San Bernardino counties): south -> Los Angeles,
# north -> San Francisco. See README "OFM offices".
OFFICE_BY_JURISDICTION: dict[str, str] = {
    **dict.fromkeys(("DC", "MD", "VA", "WV", "DE", "NC", "SC"), "WAS"),
    **dict.fromkeys(("NY", "NJ", "PA", "CT", "RI", "MA", "VT", "NH", "ME"), "NYC"),
    **dict.fromkeys(
        ("IL", "IN", "IA", "KS", "KY", "MI", "MN", "MO", "NE", "ND", "OH", "SD", "WI"), "CHI"
    ),
    **dict.fromkeys(("TX", "OK", "LA", "AR", "NM", "CO"), "HOU"),
    **dict.fromkeys(("FL", "GA", "AL", "MS", "TN", "PR"), "MIA"),
    **dict.fromkeys(("AZ", "NV", "UT"), "LAX"),
    **dict.fromkeys(("OR", "WA", "ID", "MT", "WY", "AK", "HI", "GU", "AS", "MH"), "SFO"),
}
CALIFORNIA_SPLIT_LAT = 35.79

# Demo phone numbers are 555-01xx (reserved for fiction); demo e-mails use example.org.


def ofm_office_for(jurisdiction: str, lat: float | None = None) -> str:
    """The OFM office responsible for a location in ``jurisdiction`` (USPS code).

    California needs the latitude (split at :data:`CALIFORNIA_SPLIT_LAT`); without one, a
    California location goes to Los Angeles.
    """
    if jurisdiction == "CA":
        return "SFO" if lat is not None and lat >= CALIFORNIA_SPLIT_LAT else "LAX"
    try:
        return OFFICE_BY_JURISDICTION[jurisdiction]
    except KeyError:
        raise ValueError(
            f"jurisdiction must be one of the {len(JURISDICTIONS)} USPS codes "
            f"{', '.join(JURISDICTIONS)}; got {jurisdiction!r}"
        ) from None
