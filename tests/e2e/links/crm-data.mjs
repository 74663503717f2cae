// The customers the local CRM (crm-server.mjs) serves: a Shopify store's customers, a HubSpot
// portal's contacts and a custom CRM's customers (the guide's own example shape), generated from a
// seed with a small PRNG, so that every run and every test sees the same data.
//
// Each source has a fixed set of pinned records that the labelled questions (questions.mjs) ask
// about, spread evenly through the list (so they land on every page), and generated filler around
// them. The filler is drawn from pools that share no first name, last name, city, company or
// note with a pinned record, and no filler is in a place or business a question describes ("the
// dentist's office in Georgia", "our bulk buyer in the Baltics"): every question has exactly one
// right record. Every record flattens (in the guide's `customers[0].name: John Doe` format) to
// well under 1,200 characters, the default chunk of shared/domain links::chunk, so one record is
// one chunk; crm-server.test.mjs checks that.

/** A seeded PRNG (xorshift32): `next()` is a float in [0, 1). Never Math.random, so data repeats. */
export function prng(seed) {
  let state = (Number(seed) >>> 0) || 0x9e3779b9;
  const next = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 4_294_967_296;
  };
  // The first outputs of xorshift follow the seed's bits closely; stir a little first.
  for (let i = 0; i < 8; i += 1) next();
  next.int = (min, max) => min + Math.floor(next() * (max - min + 1));
  next.pick = (list) => list[Math.floor(next() * list.length)];
  return next;
}

/** FNV-1a over a string, mixed with a seed: one independent stream per source. */
function streamSeed(seed, name) {
  let hash = (0x811c9dc5 ^ (Number(seed) >>> 0)) >>> 0;
  for (const char of name) {
    hash ^= char.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The day the generated history starts; every timestamp is this plus a generated offset. */
const EPOCH = Date.UTC(2021, 0, 4, 9, 0, 0);
const DAY = 86_400_000;

/** Shopify writes times in the shop's zone; this store is in Dublin (UTC+00:00 in winter). */
function shopifyTime(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+00:00');
}
const hubspotTime = (ms) => new Date(ms).toISOString();

// ---------------------------------------------------------------- pinned records

const address = (address1, city, province, country, country_code, zip) => ({ address1, city, province, country, country_code, zip });

/**
 * The Shopify customers the questions ask about. `since` is days after EPOCH; the rest are the
 * customer's own fields.
 */
export const PINNED_SHOPIFY = Object.freeze([
  { id: 7310243561001, first_name: 'Priya', last_name: 'Nair', email: 'priya.nair@mailbox.example', phone: '+353871234501', state: 'enabled', verified_email: true, orders_count: 14, total_spent: '1899.50', tags: 'gold-support, vip', note: 'Premium annual plan. Prefers WhatsApp over email.', since: 40, default_address: address('12 Grand Parade', 'Cork', 'Co. Cork', 'Ireland', 'IE', 'T12 X2Y4') },
  { id: 7310243561002, first_name: 'Declan', last_name: 'Byrne', email: 'declan.byrne@mailbox.example', phone: '+353861230002', state: 'enabled', verified_email: true, orders_count: 2, total_spent: '240.00', tags: 'newsletter', note: '', since: 95, default_address: address('4 Douglas Street', 'Cork', 'Co. Cork', 'Ireland', 'IE', 'T12 K8P3') },
  { id: 7310243561003, first_name: 'Margaret', last_name: "O'Connell", email: 'm.oconnell@westshore.example', phone: '+353912340003', state: 'enabled', verified_email: true, orders_count: 37, total_spent: '5310.75', tags: 'silver-support, wholesale', note: 'Wholesale account, invoiced monthly.', since: 12, default_address: address('7 Quay Street', 'Galway', 'Co. Galway', 'Ireland', 'IE', 'H91 C2T8') },
  { id: 7310243561004, first_name: 'Tomasz', last_name: 'Wiśniewski', email: 'tomasz.w@poczta.example', phone: '+48601234567', state: 'enabled', verified_email: true, orders_count: 5, total_spent: '412.30', tags: 'bronze-support', note: '', since: 210, default_address: address('ul. Marszałkowska 84', 'Warsaw', 'Mazowieckie', 'Poland', 'PL', '00-514') },
  { id: 7310243561005, first_name: 'Aoife', last_name: 'Gallagher', email: 'aoife.gallagher@mailbox.example', phone: '+353719120005', state: 'disabled', verified_email: true, orders_count: 3, total_spent: '129.99', tags: 'churned', note: 'Closed her account in March after a delivery dispute.', since: 150, default_address: address('22 Wine Street', 'Sligo', 'Co. Sligo', 'Ireland', 'IE', 'F91 H6W2') },
  { id: 7310243561006, first_name: 'Hiroshi', last_name: 'Tanaka', email: 'hiroshi.tanaka@kaisha.example', phone: '+81355550106', state: 'enabled', verified_email: false, orders_count: 1, total_spent: '58.00', tags: '', note: 'Signed up at the Tokyo pop-up.', since: 400, default_address: address('2-11-3 Jingumae', 'Tokyo', 'Tokyo', 'Japan', 'JP', '150-0001') },
  { id: 7310243561007, first_name: 'Fatima', last_name: 'El Idrissi', email: 'fatima.elidrissi@atlas.example', phone: '+212661230007', state: 'enabled', verified_email: true, orders_count: 58, total_spent: '12450.00', tags: 'platinum-support, vip, wholesale', note: 'Buys for three boutiques.', since: 7, default_address: address('18 Rue de la Liberté', 'Marrakesh', 'Marrakesh-Safi', 'Morocco', 'MA', '40000') },
  { id: 7310243561008, first_name: 'Siobhán', last_name: 'Kelly', email: 'siobhan.kelly@mailbox.example', phone: '+353611230008', state: 'enabled', verified_email: true, orders_count: 9, total_spent: '860.00', tags: 'gold-support', note: 'Allergic to latex: never ship latex gloves.', since: 88, default_address: address('3 Thomas Street', 'Limerick', 'Co. Limerick', 'Ireland', 'IE', 'V94 E8R1') },
  { id: 7310243561009, first_name: 'Mateo', last_name: 'Fernández', email: 'mateo.fernandez@correo.example', phone: '+34612340009', state: 'enabled', verified_email: true, orders_count: 3, total_spent: '150.25', tags: 'bronze-support', note: 'Sends a birthday hamper every June.', since: 300, default_address: address('Calle de Alcalá 120', 'Madrid', 'Madrid', 'Spain', 'ES', '28009') },
  { id: 7310243561010, first_name: 'Grace', last_name: 'Okonkwo', email: 'grace.okonkwo@camdencafes.example', phone: '+447700900010', state: 'enabled', verified_email: true, orders_count: 22, total_spent: '3205.40', tags: 'gold-support, b2b', note: 'Orders for the Camden café chain.', since: 60, default_address: address('41 Parkway', 'London', 'England', 'United Kingdom', 'GB', 'NW1 7PN') },
  { id: 7310243561011, first_name: 'Elena', last_name: 'Popescu', email: 'elena.popescu@posta.example', phone: '+40721230011', state: 'enabled', verified_email: true, orders_count: 11, total_spent: '1420.00', tags: 'vip', note: 'Gift wrapping on every order.', since: 130, default_address: address('Strada Lipscani 15', 'Bucharest', 'Bucharest', 'Romania', 'RO', '030031') },
  { id: 7310243561012, first_name: 'Kwame', last_name: 'Mensah', email: 'kwame.mensah@gold-coast.example', phone: '+233241230012', state: 'enabled', verified_email: true, orders_count: 6, total_spent: '688.80', tags: 'silver-support', note: 'Ships to a PO box.', since: 275, default_address: address('PO Box 1120', 'Accra', 'Greater Accra', 'Ghana', 'GH', 'GA-110') },
  { id: 7310243561013, first_name: 'Isabelle', last_name: 'Moreau', email: 'isabelle.moreau@courriel.example', phone: '+33612340013', state: 'enabled', verified_email: true, orders_count: 8, total_spent: '975.60', tags: 'gold-support', note: 'Asked for invoices in French.', since: 190, default_address: address('9 Rue Mercière', 'Lyon', 'Auvergne-Rhône-Alpes', 'France', 'FR', '69002') },
  { id: 7310243561014, first_name: 'Rohan', last_name: 'Mehta', email: 'rohan.mehta@inbox.example', phone: '+919812340014', state: 'enabled', verified_email: true, orders_count: 0, total_spent: '0.00', tags: 'newsletter', note: 'Abandoned his cart twice.', since: 420, default_address: address('Flat 6, Marine Drive', 'Mumbai', 'Maharashtra', 'India', 'IN', '400020') },
  { id: 7310243561015, first_name: 'Brigid', last_name: 'Doherty', email: 'brigid.doherty@mailbox.example', phone: '+353749120015', state: 'enabled', verified_email: true, orders_count: 19, total_spent: '2240.10', tags: 'silver-support, vip', note: 'Prefers phone calls in the evening.', since: 33, default_address: address('Main Street', 'Letterkenny', 'Co. Donegal', 'Ireland', 'IE', 'F92 X7Y2') },
  { id: 7310243561016, first_name: 'Yusuf', last_name: 'Demir', email: 'yusuf.demir@posta-tr.example', phone: '+905321230016', state: 'enabled', verified_email: true, orders_count: 4, total_spent: '310.00', tags: 'bronze-support', note: 'His assistant Selin handles all returns.', since: 345, default_address: address('İstiklal Caddesi 101', 'Istanbul', 'Istanbul', 'Turkey', 'TR', '34433') },
  { id: 7310243561017, first_name: 'Niamh', last_name: 'Fitzgerald', email: 'niamh.fitzgerald@mailbox.example', phone: '+353511230017', state: 'enabled', verified_email: true, orders_count: 12, total_spent: '1200.00', tags: 'gold-support', note: 'Collects in store when she can.', since: 222, default_address: address('The Mall', 'Waterford', 'Co. Waterford', 'Ireland', 'IE', 'X91 PK2E') },
  { id: 7310243561018, first_name: 'Dmitri', last_name: 'Volkov', email: 'dmitri.volkov@baltic-trade.example', phone: '+37122340018', state: 'enabled', verified_email: true, orders_count: 26, total_spent: '4100.00', tags: 'wholesale', note: 'Pays by bank transfer only.', since: 101, default_address: address('Brīvības iela 55', 'Riga', 'Riga', 'Latvia', 'LV', 'LV-1010') },
]);

/** The HubSpot contacts the questions ask about; `support_plan` is the portal's custom property. */
export const PINNED_HUBSPOT = Object.freeze([
  { id: '501', firstname: 'Sofia', lastname: 'Marquez', email: 'sofia.marquez@brightline.example', phone: '+34961230501', company: 'Brightline Logistics', jobtitle: 'Operations Director', city: 'Valencia', lifecyclestage: 'customer', support_plan: 'Enterprise', since: 20 },
  { id: '502', firstname: 'Oluwaseun', lastname: 'Adeyemi', email: 'oluwaseun@kestrel-analytics.example', phone: '+2348031230502', company: 'Kestrel Analytics', jobtitle: 'Data Engineer', city: 'Lagos', lifecyclestage: 'opportunity', support_plan: 'Standard', since: 75 },
  { id: '503', firstname: 'Ingrid', lastname: 'Halvorsen', email: 'ingrid@fjordside.example', phone: '+4755230503', company: 'Fjordside Seafood', jobtitle: 'Purchasing Manager', city: 'Bergen', lifecyclestage: 'lead', support_plan: 'Basic', since: 310 },
  { id: '504', firstname: 'Rafael', lastname: 'Oliveira', email: 'rafael@copacabana-roasters.example', phone: '+5521991230504', company: 'Copacabana Coffee Roasters', jobtitle: 'Founder', city: 'Rio de Janeiro', lifecyclestage: 'customer', support_plan: 'Premium', since: 140 },
  { id: '505', firstname: 'Wei', lastname: 'Chen', email: 'wei.chen@lotus-robotics.example', phone: '+8675512340505', company: 'Lotus Robotics', jobtitle: 'CTO', city: 'Shenzhen', lifecyclestage: 'evangelist', support_plan: 'Premium', since: 55 },
  { id: '506', firstname: 'Nadia', lastname: 'Petrova', email: 'n.petrova@volga-textiles.example', phone: '+78432340506', company: 'Volga Textiles', jobtitle: 'Head of Procurement', city: 'Kazan', lifecyclestage: 'salesqualifiedlead', support_plan: 'Standard', since: 260 },
  { id: '507', firstname: 'Ebony', lastname: 'Washington', email: 'ebony@peachtree-dental.example', phone: '+14045550507', company: 'Peachtree Dental Group', jobtitle: 'Practice Manager', city: 'Atlanta', lifecyclestage: 'customer', support_plan: 'Enterprise', since: 99 },
  { id: '508', firstname: 'Hamish', lastname: 'MacLeod', email: 'hamish@thistle-distillery.example', phone: '+441463230508', company: 'Thistle Distillery', jobtitle: 'Brand Manager', city: 'Inverness', lifecyclestage: 'marketingqualifiedlead', support_plan: 'Basic', since: 180 },
  { id: '509', firstname: 'Ananya', lastname: 'Krishnan', email: 'ananya.k@saffron-health.example', phone: '+918012340509', company: 'Saffron Health', jobtitle: 'Chief Medical Officer', city: 'Bengaluru', lifecyclestage: 'customer', support_plan: 'Premium', since: 35 },
  { id: '510', firstname: 'Diego', lastname: 'Alvarez', email: 'diego@andes-outdoor.example', phone: '+56912340510', company: 'Andes Outdoor Gear', jobtitle: 'E-commerce Lead', city: 'Santiago', lifecyclestage: 'opportunity', support_plan: 'Standard', since: 230 },
  { id: '511', firstname: 'Katarzyna', lastname: 'Nowak', email: 'k.nowak@amber-print.example', phone: '+48581230511', company: 'Amber Print House', jobtitle: 'Office Manager', city: 'Gdańsk', lifecyclestage: 'customer', support_plan: 'Standard', since: 115 },
  { id: '512', firstname: 'Thabo', lastname: 'Nkosi', email: 'thabo@karoo-solar.example', phone: '+27821230512', company: 'Karoo Solar', jobtitle: 'Installer', city: 'Johannesburg', lifecyclestage: 'lead', support_plan: 'Basic', since: 380 },
  { id: '513', firstname: 'Emily', lastname: 'Carter', email: 'emily.carter@harbourview.example', phone: '+19025550513', company: 'Harbourview Realty', jobtitle: 'Agent', city: 'Halifax', lifecyclestage: 'subscriber', support_plan: 'Basic', since: 400 },
  { id: '514', firstname: 'Mohammed', lastname: 'Al-Farsi', email: 'm.alfarsi@oasis-water.example', phone: '+96891230514', company: 'Oasis Water Systems', jobtitle: 'Procurement Lead', city: 'Muscat', lifecyclestage: 'customer', support_plan: 'Enterprise', since: 66 },
  { id: '515', firstname: 'Astrid', lastname: 'Vogel', email: 'astrid@alpenglow-ski.example', phone: '+43512230515', company: 'Alpenglow Ski School', jobtitle: 'Owner', city: 'Innsbruck', lifecyclestage: 'salesqualifiedlead', support_plan: 'Premium', since: 290 },
  { id: '516', firstname: 'Kenji', lastname: 'Watanabe', email: 'kenji@sakura-ceramics.example', phone: '+81752340516', company: 'Sakura Ceramics', jobtitle: 'Sales Manager', city: 'Kyoto', lifecyclestage: 'customer', support_plan: 'Standard', since: 170 },
  { id: '517', firstname: 'Chiara', lastname: 'Bianchi', email: 'chiara@dolomiti-bikes.example', phone: '+39461230517', company: 'Dolomiti Bikes', jobtitle: 'Marketing Lead', city: 'Trento', lifecyclestage: 'evangelist', support_plan: 'Premium', since: 205 },
  { id: '518', firstname: 'Patrick', lastname: 'Sullivan', email: 'patrick@shamrock-freight.example', phone: '+16175550518', company: 'Shamrock Freight', jobtitle: 'Fleet Manager', city: 'Boston', lifecyclestage: 'opportunity', support_plan: 'Enterprise', since: 25 },
]);

/** The custom CRM's customers the questions ask about; the first is the guide's own example. */
export const PINNED_CUSTOM = Object.freeze([
  { id: 'cust-123', name: 'John Doe', email: 'john@example.com', subscription: 'Premium', support_level: 'Gold' },
  { id: 'cust-124', name: 'Amara Okafor', email: 'amara.okafor@example.com', subscription: 'Basic', support_level: 'Bronze' },
  { id: 'cust-125', name: 'Björn Lindqvist', email: 'bjorn.lindqvist@example.com', subscription: 'Enterprise', support_level: 'Platinum' },
  { id: 'cust-126', name: 'Mei Zhou', email: 'mei.zhou@example.com', subscription: 'Premium', support_level: 'Silver' },
  { id: 'cust-127', name: 'Gianluca Rossi', email: 'gianluca.rossi@example.com', subscription: 'Standard', support_level: 'Gold' },
  { id: 'cust-128', name: 'Zainab Hussain', email: 'zainab.hussain@example.com', subscription: 'Premium', support_level: 'Platinum' },
  { id: 'cust-129', name: 'Pedro Santos', email: 'pedro.santos@example.com', subscription: 'Basic', support_level: 'Silver' },
  { id: 'cust-130', name: 'Olga Ivanova', email: 'olga.ivanova@example.com', subscription: 'Standard', support_level: 'Bronze' },
  { id: 'cust-131', name: 'Samuel Cohen', email: 'samuel.cohen@example.com', subscription: 'Enterprise', support_level: 'Gold' },
  { id: 'cust-132', name: 'Leilani Kahale', email: 'leilani.kahale@example.com', subscription: 'Premium', support_level: 'Gold' },
  { id: 'cust-133', name: 'Arjun Patel', email: 'arjun.patel@example.com', subscription: 'Standard', support_level: 'Silver' },
  { id: 'cust-134', name: 'Freya Nielsen', email: 'freya.nielsen@example.com', subscription: 'Basic', support_level: 'Gold' },
  { id: 'cust-135', name: 'Tariq Rahman', email: 'tariq.rahman@example.com', subscription: 'Enterprise', support_level: 'Platinum' },
  { id: 'cust-136', name: 'Camille Laurent', email: 'camille.laurent@example.com', subscription: 'Premium', support_level: 'Bronze' },
]);

// ---------------------------------------------------------------- filler pools

// None of these is a pinned record's first or last name, a nickname a question uses (Jon, Maggie,
// Seun, Kasia, Pete, Olya, Bridget, Isabel, Yusef, Sam, Peter), or close to one.
const FIRST_NAMES = [
  'Alice', 'Ben', 'Carla', 'Daniel', 'Eva', 'Felix', 'Gemma', 'Hugo', 'Iris', 'Jack', 'Karen', 'Leo', 'Maria', 'Noah',
  'Olivia', 'Paul', 'Quinn', 'Rosa', 'Tara', 'Uma', 'Victor', 'Wendy', 'Xavier', 'Yara', 'Zoe', 'Adam', 'Bella',
  'Conor', 'Diana', 'Ethan', 'Fiona', 'George', 'Hannah', 'Julia', 'Kevin', 'Laura', 'Martin', 'Nora', 'Owen', 'Pia',
  'Ruth', 'Simon', 'Theo', 'Ursula', 'Vera', 'Will', 'Alan', 'Beth', 'Colm', 'Dara', 'Eoin', 'Fern', 'Gavin', 'Helen',
  'Ian', 'Joanna', 'Keith', 'Lena', 'Marcus', 'Nell', 'Orla', 'Rachel', 'Stefan', 'Tessa', 'Vincent', 'Agnes', 'Bruno',
  'Cora', 'Dylan', 'Elsa',
];
const LAST_NAMES = [
  'Smith', 'Brown', 'Walsh', 'Ryan', 'Clarke', 'Hughes', 'Foster', 'Grant', 'Hayes', 'Jensen', 'Keller', 'Lambert',
  'Morgan', 'Owens', 'Price', 'Quinlan', 'Reid', 'Shaw', 'Turner', 'Vance', 'Ward', 'Young', 'Baker', 'Carroll',
  'Dunne', 'Ellis', 'Fleming', 'Gordon', 'Harper', 'Irwin', 'Joyce', 'Kerr', 'Lowe', 'Mason', 'Nolan', 'Parker',
  'Quigley', 'Rowe', 'Stone', 'Tate', 'Upton', 'Vaughan', 'Webb', 'Yates', 'Abbott', 'Barrett', 'Coleman', 'Dalton',
  'Egan', 'Flynn', 'Gill', 'Hale', 'Ingram', 'Jordan', 'Kane', 'Lynch', 'Moran', 'Nash', 'Oakley', 'Power', 'Quirke',
  'Rooney', 'Sharp', 'Tobin', 'Wilde', 'Archer', 'Booth', 'Cross', 'Drake', 'Emery',
];
// No Cork, Sligo, Donegal, Japan, India, the Baltics or any other place a question describes.
const SHOPIFY_PLACES = [
  ['Dublin', 'Co. Dublin', 'Ireland', 'IE', 'D02'],
  ['Kilkenny', 'Co. Kilkenny', 'Ireland', 'IE', 'R95'],
  ['Athlone', 'Co. Westmeath', 'Ireland', 'IE', 'N37'],
  ['Belfast', 'Northern Ireland', 'United Kingdom', 'GB', 'BT1'],
  ['Manchester', 'England', 'United Kingdom', 'GB', 'M1'],
  ['Bristol', 'England', 'United Kingdom', 'GB', 'BS1'],
  ['Amsterdam', 'North Holland', 'Netherlands', 'NL', '1012'],
  ['Berlin', 'Berlin', 'Germany', 'DE', '10115'],
  ['Hamburg', 'Hamburg', 'Germany', 'DE', '20095'],
  ['Brussels', 'Brussels', 'Belgium', 'BE', '1000'],
  ['Copenhagen', 'Capital Region', 'Denmark', 'DK', '1050'],
  ['Prague', 'Prague', 'Czechia', 'CZ', '110 00'],
  ['Lisbon', 'Lisbon', 'Portugal', 'PT', '1100-148'],
  ['Milan', 'Lombardy', 'Italy', 'IT', '20121'],
  ['Zurich', 'Zurich', 'Switzerland', 'CH', '8001'],
];
const STREETS = ['High Street', 'Church Road', 'Station Road', 'Mill Lane', 'Park Avenue', 'Market Square', 'Bridge Street', 'King Street', 'Harbour Road', 'Orchard Way'];
const SHOPIFY_TAGS = ['', 'newsletter', 'bronze-support', 'silver-support', 'gold-support', 'repeat-buyer', 'newsletter, repeat-buyer', 'bronze-support, newsletter'];
const SHOPIFY_NOTES = ['', '', '', 'Leave parcels with a neighbour.', 'Prefers email updates.', 'Subscribed at checkout.', 'Uses the loyalty card.', 'Repeat customer since launch.'];
// No Georgia, Norway, Brazil, Austria, China, Scotland or the Volga.
const HUBSPOT_CITIES = ['Chicago', 'Denver', 'Seattle', 'Austin', 'Toronto', 'Vancouver', 'Sydney', 'Melbourne', 'Auckland', 'Dublin', 'London', 'Berlin', 'Paris', 'Madrid', 'Singapore'];
// No dental, seafood, coffee, robotics, distillery, textile or ski businesses.
const COMPANY_WORDS = [
  ['Blue', 'Silver', 'North', 'Bright', 'Cedar', 'Granite', 'Harbor', 'Summit', 'Maple', 'Iron'],
  ['Ridge', 'Field', 'Bridge', 'Stone', 'Wave', 'Peak', 'Grove', 'Point'],
  ['Consulting', 'Software', 'Partners', 'Labs', 'Media', 'Supplies', 'Builders', 'Interiors'],
];
const JOB_TITLES = ['Account Manager', 'Marketing Coordinator', 'Software Developer', 'Sales Director', 'HR Manager', 'Finance Lead', 'Customer Success Manager', 'Product Manager'];
const LIFECYCLE_STAGES = ['subscriber', 'lead', 'marketingqualifiedlead', 'salesqualifiedlead', 'opportunity', 'customer', 'customer', 'evangelist', 'other'];
const SUPPORT_PLANS = ['Basic', 'Standard', 'Premium', 'Enterprise'];
const SUPPORT_LEVELS = ['Bronze', 'Silver', 'Gold', 'Platinum'];

const slug = (text) => text.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z]+/g, '');

/**
 * Distinct filler names for one source: `next()` never returns a name twice. Past the 4,900 plain
 * names (a source at a customer's size), first names gain a middle initial, A. to Z., a pool of
 * 4,900 each: up to 132,300 names in all.
 */
function nameSource(random, taken = new Set()) {
  const pool = FIRST_NAMES.length * LAST_NAMES.length;
  const tiers = 27;
  return () => {
    const tier = Math.floor(taken.size / pool);
    if (tier >= tiers) throw new Error('crm data: out of filler names');
    const middle = tier === 0 ? '' : ` ${String.fromCharCode(64 + tier)}.`;
    for (;;) {
      const first = `${random.pick(FIRST_NAMES)}${middle}`;
      const last = random.pick(LAST_NAMES);
      const key = `${first} ${last}`;
      if (!taken.has(key)) {
        taken.add(key);
        return [first, last];
      }
    }
  };
}

// ---------------------------------------------------------------- records as each CRM answers them

function shopifyRecord(fields) {
  const created = EPOCH + fields.since * DAY + (fields.id % 86_400) * 1000;
  return {
    id: fields.id,
    email: fields.email,
    first_name: fields.first_name,
    last_name: fields.last_name,
    phone: fields.phone,
    state: fields.state,
    verified_email: fields.verified_email,
    orders_count: fields.orders_count,
    total_spent: fields.total_spent,
    currency: 'EUR',
    tags: fields.tags,
    note: fields.note,
    created_at: shopifyTime(created),
    updated_at: shopifyTime(created + 30 * DAY),
    default_address: { ...fields.default_address },
  };
}

function hubspotRecord(fields) {
  const created = EPOCH + fields.since * DAY + Number(fields.id) * 7_919;
  const modified = created + 45 * DAY;
  return {
    id: fields.id,
    properties: {
      firstname: fields.firstname,
      lastname: fields.lastname,
      email: fields.email,
      phone: fields.phone,
      company: fields.company,
      jobtitle: fields.jobtitle,
      city: fields.city,
      lifecyclestage: fields.lifecyclestage,
      support_plan: fields.support_plan,
      hs_object_id: fields.id,
      createdate: hubspotTime(created),
      lastmodifieddate: hubspotTime(modified),
    },
    createdAt: hubspotTime(created),
    updatedAt: hubspotTime(modified),
    archived: false,
  };
}

/** The filler makers, one per source: `make(random, name, index)` -> the CRM's record. */
const FILLER = {
  shopify(random, [first, last], n) {
    const [city, province, country, code, zipPrefix] = random.pick(SHOPIFY_PLACES);
    const orders = random.int(0, 30);
    return shopifyRecord({
      id: 6_900_000_000_000 + n * 10_007 + random.int(0, 9_999),
      first_name: first,
      last_name: last,
      email: `${slug(first)}.${slug(last)}${n}@shopper.example`,
      phone: `+3538${random.int(3, 9)}${String(random.int(0, 9_999_999)).padStart(7, '0')}`,
      state: random() < 0.9 ? 'enabled' : 'invited',
      verified_email: random() < 0.92,
      orders_count: orders,
      total_spent: (orders * random.int(1_500, 9_000) / 100).toFixed(2),
      tags: random.pick(SHOPIFY_TAGS),
      note: random.pick(SHOPIFY_NOTES),
      since: random.int(0, 700),
      default_address: address(`${random.int(1, 199)} ${random.pick(STREETS)}`, city, province, country, code, `${zipPrefix} ${String(random.int(100, 999))}`),
    });
  },
  hubspot(random, [first, last], n) {
    const company = COMPANY_WORDS.map((words) => random.pick(words)).join(' ');
    return hubspotRecord({
      id: String(1_001 + n * 3 + random.int(0, 2)),
      firstname: first,
      lastname: last,
      email: `${slug(first)}.${slug(last)}${n}@${slug(company)}.example`,
      phone: `+1${random.int(200, 989)}555${String(random.int(0, 9_999)).padStart(4, '0')}`,
      company,
      jobtitle: random.pick(JOB_TITLES),
      city: random.pick(HUBSPOT_CITIES),
      lifecyclestage: random.pick(LIFECYCLE_STAGES),
      support_plan: random.pick(SUPPORT_PLANS),
      since: random.int(0, 700),
    });
  },
  custom(random, [first, last], n) {
    return {
      id: `cust-${2_000 + n}`,
      name: `${first} ${last}`,
      email: `${slug(first)}.${slug(last)}${n}@example.net`,
      subscription: random.pick(SUPPORT_PLANS),
      support_level: random.pick(SUPPORT_LEVELS),
    };
  },
};

const PINNED = {
  shopify: () => PINNED_SHOPIFY.map(shopifyRecord),
  hubspot: () => PINNED_HUBSPOT.map(hubspotRecord),
  custom: () => PINNED_CUSTOM.map((c) => ({ ...c })),
};

export const SOURCES = Object.freeze(['shopify', 'hubspot', 'custom']);

/** The sizes the labelled questions are asked against ("several hundred records"). */
export const FULL_SIZES = Object.freeze({ shopify: 300, hubspot: 250, custom: 60 });

/**
 * Makes one source's records: `size` in all, the first min(size, pinned) pinned records spread
 * evenly (pinned k of p at index floor((k + 0.5) * size / p)) and generated filler around them.
 * `pinned: false` leaves them out. Returns `{ records, more(count) }`, `more` making further
 * filler records (distinct from all before) for a test that adds customers.
 */
export function generateSource(source, { seed = 3, size, pinned = true } = {}) {
  if (!FILLER[source]) throw new Error(`crm data: unknown source ${source}`);
  const random = prng(streamSeed(seed, source));
  const pins = pinned ? PINNED[source]().slice(0, size) : [];
  const taken = new Set(pins.map((r) => (source === 'shopify' ? `${r.first_name} ${r.last_name}` : source === 'hubspot' ? `${r.properties.firstname} ${r.properties.lastname}` : r.name)));
  const nextName = nameSource(random, taken);
  let made = 0;
  const filler = () => FILLER[source](random, nextName(), made++);
  const slots = new Map(pins.map((record, k) => [Math.floor(((k + 0.5) * size) / pins.length), record]));
  const records = [];
  for (let index = 0; index < size; index += 1) records.push(slots.get(index) ?? filler());
  return { records, more: (count) => Array.from({ length: count }, filler) };
}

/** The id of a record as the record writes it (Shopify's number as text). */
export function recordId(record) {
  return String(record.id);
}

/** A record's display name, whatever its source. */
export function recordName(record) {
  if (record.properties) return `${record.properties.firstname} ${record.properties.lastname}`;
  if ('first_name' in record) return `${record.first_name} ${record.last_name}`;
  return record.name;
}

/** A record's email, whatever its source. */
export function recordEmail(record) {
  return record.properties ? record.properties.email : record.email;
}

/** The returns policy the plain-text file serves. */
export const RETURNS_POLICY = `Returns policy

You may return any unworn item within 30 days of delivery for a full refund.
Sale items can be exchanged but not refunded.
Refunds are paid to the original payment method within 5 working days of the item reaching our warehouse in Kilkenny.
Customers on gold support or above get a free prepaid returns label; everyone else pays 4.95 EUR for the label.
Damaged or faulty goods are collected free of charge: email returns@shop.example with a photo and your order number.
`;
