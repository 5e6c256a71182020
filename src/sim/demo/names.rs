//! Invented words the demo organization is made of: names, titles and
//! phrases. None of them belongs to a real person or company.

pub(super) const FIRST_NAMES: &[&str] = &[
    "Ada", "Bruno", "Celia", "Dario", "Elin", "Felix", "Greta", "Hugo", "Iris", "Jonas", "Kaja",
    "Leon", "Mara", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tea", "Ugo", "Vera", "Wim",
    "Xenia", "Yara", "Zeno", "Alma", "Boris", "Clara", "Dino", "Ema", "Filip", "Gaia", "Hana",
    "Ivo", "Jana", "Karlo", "Lea", "Marko", "Nora", "Oskar", "Petra", "Rene", "Sara", "Tin", "Una",
    "Vito", "Zora", "Ines", "Matej", "Lina", "Teo", "Mila", "Roko", "Ela",
];

pub(super) const LAST_NAMES: &[&str] = &[
    "Ambler",
    "Brightwater",
    "Castellan",
    "Dunmore",
    "Eskildsen",
    "Farrow",
    "Galloway",
    "Harrowgate",
    "Ilves",
    "Jurak",
    "Kestrel",
    "Lindqvist",
    "Marlowe",
    "Novak",
    "Oakridge",
    "Pellegrin",
    "Quarry",
    "Rowan",
    "Stillwell",
    "Thornbury",
    "Underhill",
    "Valdane",
    "Westbrook",
    "Yardley",
    "Zelenko",
    "Ashdown",
    "Blackmoor",
    "Corwin",
    "Dalgaard",
    "Ellery",
    "Fenwick",
    "Grimaldi",
    "Holloway",
    "Ivers",
    "Kovalenko",
    "Larkspur",
    "Morrow",
    "Northcott",
    "Orsini",
    "Prentice",
    "Ravensworth",
    "Sandoval",
    "Tamsin",
    "Vasko",
    "Whitlock",
];

pub(super) const EMPLOYEE_TITLES: &[&str] = &[
    "Designer",
    "Senior Designer",
    "Art Director",
    "Frontend Developer",
    "Backend Developer",
    "Full-stack Developer",
    "Project Manager",
    "Account Manager",
    "QA Engineer",
    "Copywriter",
    "SEO Specialist",
    "UX Researcher",
    "DevOps Engineer",
    "Strategist",
    "Data Analyst",
    "Office Manager",
];

pub(super) const CONTACT_TITLES: &[&str] = &[
    "Marketing Director",
    "Head of Digital",
    "Product Owner",
    "CEO",
    "Brand Manager",
    "Procurement Lead",
    "CTO",
    "Communications Manager",
    "E-commerce Manager",
];

pub(super) const COMPANY_PREFIXES: &[&str] = &[
    "Amber",
    "Birch",
    "Cobalt",
    "Driftwood",
    "Ember",
    "Fjord",
    "Granite",
    "Harbor",
    "Indigo",
    "Juniper",
    "Kiln",
    "Lantern",
    "Meridian",
    "Nimbus",
    "Orchard",
    "Pinecone",
    "Quartz",
    "Riverbend",
    "Saffron",
    "Tidewater",
    "Umber",
    "Velvet",
    "Willow",
    "Yonder",
    "Zephyr",
    "Copper",
    "Hollow",
    "Maple",
    "Silver",
    "Thistle",
];

pub(super) const COMPANY_SUFFIXES: &[&str] = &[
    "Foods",
    "Logistics",
    "Outfitters",
    "Clinics",
    "Motors",
    "Bank",
    "Travel",
    "Labs",
    "Energy",
    "Apparel",
    "Publishing",
    "Insurance",
    "Robotics",
    "Coffee",
    "Furniture",
    "Studios",
];

pub(super) const LEGAL_FORMS: &[&str] = &["Ltd", "GmbH", "d.o.o.", "Inc.", "AG", "B.V."];

pub(super) const PROJECT_TOPICS: &[&str] = &[
    "Website Relaunch",
    "Brand Refresh",
    "Mobile App",
    "Campaign Q1",
    "Campaign Q3",
    "E-shop Migration",
    "SEO Retainer",
    "Design System",
    "Intranet",
    "Customer Portal",
    "Social Media Retainer",
    "Annual Report",
    "Product Launch",
    "Analytics Setup",
    "Newsletter Program",
    "Support Retainer",
];

pub(super) const INTERNAL_PROJECTS: &[&str] = &[
    "Internal: Agency Website",
    "Internal: Hiring",
    "Internal: Training",
    "Internal: Sales Support",
    "Internal: Tooling",
];

pub(super) const TASK_LIST_NAMES: &[&str] = &[
    "Backlog",
    "Discovery",
    "Design",
    "Development",
    "Content",
    "QA",
    "Launch",
    "Maintenance",
    "Sprint 1",
    "Sprint 2",
];

pub(super) const TASK_VERBS: &[&str] = &[
    "Design", "Build", "Review", "Fix", "Write", "Test", "Update", "Prepare", "Migrate", "Set up",
    "Refactor", "Present", "Polish", "Document",
];

pub(super) const TASK_OBJECTS: &[&str] = &[
    "homepage hero",
    "checkout flow",
    "login screen",
    "newsletter template",
    "product page",
    "footer links",
    "search results",
    "blog layout",
    "cookie banner",
    "contact form",
    "analytics events",
    "image pipeline",
    "pricing table",
    "onboarding emails",
    "sitemap",
    "style guide",
    "API integration",
    "release notes",
];

pub(super) const DEAL_TOPICS: &[&str] = &[
    "Website redesign",
    "Content retainer",
    "App prototype",
    "Brand workshop",
    "SEO audit",
    "Performance campaign",
    "UX research sprint",
    "E-commerce build",
    "Support package",
];

pub(super) const SERVICE_NAMES: &[&str] = &[
    "Design",
    "Development",
    "Project management",
    "QA",
    "Copywriting",
    "SEO",
    "Strategy",
    "UX research",
    "DevOps",
    "Consulting",
    "Content production",
    "Analytics",
];

pub(super) const LOST_REASONS: &[&str] = &[
    "Price too high",
    "Chose a competitor",
    "Timing",
    "No budget",
    "Went silent",
    "Scope mismatch",
];

pub(super) const EXPENSE_NAMES: &[&str] = &[
    "Stock photos",
    "Font licence",
    "Train tickets",
    "Hotel",
    "Hosting",
    "Usability test incentives",
    "Printing",
    "Software subscription",
    "Client lunch",
    "Conference ticket",
];

pub(super) const COMMENT_PHRASES: &[&str] = &[
    "Looks good to me.",
    "Can we move this to next week?",
    "I pushed a first draft, feedback welcome.",
    "The client asked for a second variant.",
    "Blocked until we get the final copy.",
    "Estimate updated after the call.",
    "Please check the staging link.",
    "Done, closing this one.",
    "Adding screenshots in a minute.",
    "Budget is getting tight here.",
    "Approved by the client.",
    "Let's discuss this in the stand-up.",
];

pub(super) const BOOKING_NOTES: &[&str] = &[
    "Sprint work",
    "Launch support",
    "Workshop preparation",
    "Maintenance window",
    "Design reviews",
];

pub(super) const TIME_ENTRY_NOTES: &[&str] = &[
    "<p>Implementation</p>",
    "<p>Client call</p>",
    "<p>Code review</p>",
    "<p>Design iterations</p>",
    "<p>Bug fixing</p>",
    "<p>Planning</p>",
    "<p>Content editing</p>",
];

pub(super) const TAGS: &[&str] = &[
    "urgent",
    "retainer",
    "q-review",
    "nice-to-have",
    "client-ask",
];

/// A lowercase, dash-separated form of a name, for domains and e-mails.
pub(super) fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}
