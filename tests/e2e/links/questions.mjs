// Labelled questions about the local CRM's customers (crm-data.mjs), as a customer or an agent
// would type them, for measuring how well CRM-link search finds the right record.
//
// Each asks about one pinned record: `expect` is that record's id exactly as the record writes it
// (Shopify's numeric id as text, HubSpot's "501", the custom CRM's "cust-123"). A question marked
// `paraphrased` does not use the record's own words for it: no field names, not the full name as
// stored, not the email or id; it uses a nickname ("Jon", "Maggie", "Seun"), a misspelling
// ("Shivaun Kelly", "Bjorn Lindquist") or a description ("the dentist's office down in Georgia").
// crm-server.test.mjs checks those rules and that every expected record exists, once, in the data
// at FULL_SIZES. Questions that describe a customer ("the shopper from Cork city who spent the
// most") rely on the data generator keeping filler records out of the places and trades described.

export const QUESTIONS = Object.freeze([
  // ---- Shopify customers
  { source: 'shopify', expect: '7310243561001', paraphrased: false, question: "What's the email for Priya Nair?" },
  { source: 'shopify', expect: '7310243561002', paraphrased: false, question: "What is Declan Byrne's phone number?" },
  { source: 'shopify', expect: '7310243561003', paraphrased: false, question: "How many orders has Margaret O'Connell placed?" },
  { source: 'shopify', expect: '7310243561004', paraphrased: false, question: 'Which city is Tomasz Wiśniewski in?' },
  { source: 'shopify', expect: '7310243561005', paraphrased: false, question: "Is Aoife Gallagher's customer account enabled or disabled?" },
  { source: 'shopify', expect: '7310243561006', paraphrased: false, question: 'Has Hiroshi Tanaka verified his email?' },
  { source: 'shopify', expect: '7310243561007', paraphrased: false, question: 'How much has Fatima El Idrissi spent in total?' },
  { source: 'shopify', expect: '7310243561008', paraphrased: false, question: 'What tags does Siobhán Kelly have?' },
  { source: 'shopify', expect: '7310243561009', paraphrased: false, question: "What's the note on Mateo Fernández's account?" },
  { source: 'shopify', expect: '7310243561010', paraphrased: false, question: "What is Grace Okonkwo's address?" },
  { source: 'shopify', expect: '7310243561011', paraphrased: false, question: "What's the zip code for Elena Popescu?" },
  { source: 'shopify', expect: '7310243561012', paraphrased: false, question: 'When did Kwame Mensah become a customer?' },
  { source: 'shopify', expect: '7310243561001', paraphrased: true, question: 'Which shopper from Cork city has spent the most with us?' },
  { source: 'shopify', expect: '7310243561003', paraphrased: true, question: 'how much has maggie oconnell bought from us in total' },
  { source: 'shopify', expect: '7310243561013', paraphrased: true, question: 'Can Isabel Moro get her invoices in her own language?' },
  { source: 'shopify', expect: '7310243561014', paraphrased: true, question: 'the shopper in Mumbai who keeps leaving stuff in his basket - has he ever bought anything?' },
  { source: 'shopify', expect: '7310243561015', paraphrased: true, question: 'best time to ring Bridget Doherty?' },
  { source: 'shopify', expect: '7310243561016', paraphrased: true, question: 'who looks after sending stuff back for Yusef Demir?' },
  { source: 'shopify', expect: '7310243561018', paraphrased: true, question: 'our bulk buyer in the Baltics - can they pay by card?' },
  { source: 'shopify', expect: '7310243561008', paraphrased: true, question: 'any gloves we should avoid sending to Shivaun Kelly?' },
  { source: 'shopify', expect: '7310243561005', paraphrased: true, question: 'which Irish shopper shut her account after a delivery row?' },
  { source: 'shopify', expect: '7310243561006', paraphrased: true, question: 'has the fella we met at the shop event in Japan confirmed his e-mail yet?' },

  // ---- HubSpot contacts
  { source: 'hubspot', expect: '501', paraphrased: false, question: 'What lifecycle stage is Sofia Marquez in?' },
  { source: 'hubspot', expect: '502', paraphrased: false, question: 'What company does Oluwaseun Adeyemi work for?' },
  { source: 'hubspot', expect: '503', paraphrased: false, question: "What's Ingrid Halvorsen's job title?" },
  { source: 'hubspot', expect: '504', paraphrased: false, question: 'Which support plan is Rafael Oliveira on?' },
  { source: 'hubspot', expect: '505', paraphrased: false, question: "What's the email address of Wei Chen?" },
  { source: 'hubspot', expect: '506', paraphrased: false, question: "What is Nadia Petrova's phone number?" },
  { source: 'hubspot', expect: '508', paraphrased: false, question: 'Which city is Hamish MacLeod based in?' },
  { source: 'hubspot', expect: '509', paraphrased: false, question: 'What support plan does Ananya Krishnan have?' },
  { source: 'hubspot', expect: '510', paraphrased: false, question: 'What company is Diego Alvarez with?' },
  { source: 'hubspot', expect: '512', paraphrased: false, question: "What's Thabo Nkosi's lifecycle stage?" },
  { source: 'hubspot', expect: '514', paraphrased: false, question: "What is Mohammed Al-Farsi's job title?" },
  { source: 'hubspot', expect: '516', paraphrased: false, question: 'When was Kenji Watanabe added as a contact?' },
  { source: 'hubspot', expect: '502', paraphrased: true, question: 'what does Seun do for a living' },
  { source: 'hubspot', expect: '507', paraphrased: true, question: "who manages the dentist's office down in Georgia?" },
  { source: 'hubspot', expect: '511', paraphrased: true, question: 'is Kasia Nowak a paying client yet?' },
  { source: 'hubspot', expect: '503', paraphrased: true, question: 'the fish buyer in Norway - how far along the funnel is she?' },
  { source: 'hubspot', expect: '504', paraphrased: true, question: 'what level of help does the Brazilian coffee roaster get?' },
  { source: 'hubspot', expect: '515', paraphrased: true, question: "who's our contact at the ski school in Austria?" },
  { source: 'hubspot', expect: '505', paraphrased: true, question: 'how do I email the tech chief at the robot company?' },
  { source: 'hubspot', expect: '518', paraphrased: true, question: "Patrik Sulivan's plan?" },
  { source: 'hubspot', expect: '508', paraphrased: true, question: 'does the whisky marketing guy in the Scottish Highlands pay for top-tier help?' },
  { source: 'hubspot', expect: '506', paraphrased: true, question: 'who handles purchasing for the textile firm on the Volga?' },

  // ---- the custom CRM's customers (the guide's example shape)
  { source: 'custom', expect: 'cust-123', paraphrased: false, question: 'What plan is John Doe on?' },
  { source: 'custom', expect: 'cust-124', paraphrased: false, question: "What is Amara Okafor's support level?" },
  { source: 'custom', expect: 'cust-125', paraphrased: false, question: 'What subscription does Björn Lindqvist have?' },
  { source: 'custom', expect: 'cust-126', paraphrased: false, question: "What's the email for Mei Zhou?" },
  { source: 'custom', expect: 'cust-127', paraphrased: false, question: 'What support level does Gianluca Rossi have?' },
  { source: 'custom', expect: 'cust-131', paraphrased: false, question: "What's Samuel Cohen's subscription?" },
  { source: 'custom', expect: 'cust-133', paraphrased: false, question: 'What is the email address for Arjun Patel?' },
  { source: 'custom', expect: 'cust-123', paraphrased: true, question: 'which tier did Jon pay for' },
  { source: 'custom', expect: 'cust-125', paraphrased: true, question: 'is Bjorn Lindquist on the top package?' },
  { source: 'custom', expect: 'cust-128', paraphrased: true, question: 'how good is the help Zainab gets?' },
  { source: 'custom', expect: 'cust-129', paraphrased: true, question: 'Is Pete Santos on the cheapest option?' },
  { source: 'custom', expect: 'cust-130', paraphrased: true, question: 'what kind of after-sales care does Olya Ivanova get' },
  { source: 'custom', expect: 'cust-132', paraphrased: true, question: 'how can I write to Leilani?' },
  { source: 'custom', expect: 'cust-134', paraphrased: true, question: 'Freya Nielson - what package is she paying for?' },
  { source: 'custom', expect: 'cust-135', paraphrased: true, question: 'does Tarik Rahman get the fanciest support?' },
  { source: 'custom', expect: 'cust-136', paraphrased: true, question: 'how much help is Camila Lauren entitled to?' },
]);
